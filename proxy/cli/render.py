"""Plain-text rendering of trails, lessons and explanations for a terminal."""

from __future__ import annotations

import datetime as dt
from typing import Any

from proxy.records import Lesson


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def short(text: str | None, width: int = 200) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def feedback_line(fb: dict[str, Any]) -> str:
    parts = [f"[{fb['source']}]"]
    if fb.get("rating") is not None:
        parts.append(f"rating {fb['rating']:+d}")
    if fb.get("score") is not None:
        parts.append(f"score {fb['score']}")
    if fb.get("signal"):
        parts.append(f"signal {fb['signal']}")
    if fb.get("categories"):
        parts.append("categories " + ", ".join(fb["categories"]))
    if fb.get("comment"):
        parts.append(f'comment "{short(fb["comment"], 120)}"')
    if fb.get("correction"):
        parts.append(f'correction "{short(fb["correction"], 120)}"')
    if fb.get("lesson_id"):
        parts.append(f"-> lesson {fb['lesson_id']}")
    return " ".join(parts)


def turn(number: int, row: dict[str, Any]) -> list[str]:
    tokens = f"{row.get('prompt_tokens') or '?'} in / {row.get('completion_tokens') or '?'} out"
    ttft = f", first token {row['ttft_ms']:.0f} ms" if row.get("ttft_ms") else ""
    lines = [
        f"Turn {number}  {row['id']}  {when(row['created_at'])}",
        f"  app {row['app']}  user {row.get('user_id') or '-'}  role {row.get('user_role') or '-'}  "
        f"model {row['requested_model']} -> {row.get('served_model') or '-'}  "
        f"policy {row.get('policy') or '-'}  arm {row['arm']}",
        f"  asked:     {short(row['question'])}",
    ]
    injected = row.get("injected") or []
    if injected:
        for item in injected:
            lines.append(
                f"  injected:  lesson {item['lesson_id']} score {item['score']:.3f} by {item['injector']}"
            )
    else:
        detail = f" ({row['recall_error']})" if row.get("recall_error") else ""
        lines.append(f"  injected:  nothing; recall {row['recall_status']}{detail}")
    lines += [
        f"  answered:  {short(row['response_text']) or '-'}",
        f"  status {row['status']}  tokens {tokens}  latency {row['latency_ms']:.0f} ms{ttft}  "
        f"overhead {row['overhead_ms']:.1f} ms",
    ]
    if row.get("error"):
        lines.append(f"  error:     {row['error'].get('message')}")
    for fb in row.get("feedback") or []:
        lines.append(f"  feedback:  {feedback_line(fb)}")
    return lines


def lesson(item: Lesson, *, full: bool = False) -> list[str]:
    head = (
        f"{item.id}  {item.status:<8} app {item.app}  injected {item.times_injected}x  "
        f"negative after {item.negative_after}  positive after {item.positive_after}"
    )
    lines = [head, f"  question:   {short(item.question, 160 if not full else 2000)}"]
    if item.categories:
        lines.append(f"  categories: {', '.join(item.categories)}")
    if item.comment:
        lines.append(f"  comment:    {short(item.comment, 160 if not full else 2000)}")
    if item.correction:
        lines.append(f"  correction: {short(item.correction, 160 if not full else 2000)}")
    if full:
        lines += [
            f"  bad answer: {short(item.bad_answer, 2000)}",
            f"  from interaction {item.interaction_id}, feedback {', '.join(item.feedback_ids)}",
            f"  created {when(item.created_at)}  updated {when(item.updated_at)}  "
            f"policy {item.policy or '-'}",
        ]
        if item.review_note:
            lines.append(f"  review note: {item.review_note}")
    return lines


def explanation(found: dict[str, Any]) -> list[str]:
    lines = [
        f"policy:  {found['policy'] or '(none matched)'}"
        + (f"  from {found['policy_source']}" if found.get("policy_source") else "")
        + f"  version {found['policy_version']}  arm {found['arm']}",
        f"recall:  {found['recall']['status']}"
        + (f" at the {found['recall']['stage']} stage" if found["recall"].get("stage") else "")
        + (f" in {found['recall']['ms']:.1f} ms" if found["recall"].get("ms") is not None else "")
        + (f" ({found['recall']['error']})" if found["recall"].get("error") else ""),
    ]
    if found["lessons"]:
        lines.append("lessons:")
        for item in found["lessons"]:
            used = f"injected by {item['injected_by']}" if item["injected_by"] else "not injected"
            lines.append(f"  {item['id']}  score {item['score']:.3f}  {used}  {short(item['question'], 100)}")
    else:
        lines.append("lessons: none above the policy's min_score")
    lines.append("messages that would be sent:")
    for message in found["messages"]:
        content = message.get("content")
        text = content if isinstance(content, str) else str(content)
        lines.append(f"--- {message.get('role')}")
        lines.append(text)
    return lines
