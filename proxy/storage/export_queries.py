"""The SQL behind `loopwise export`: corrected lessons, preferences (explicit `preferred_over`
feedback, and accepted regenerations the proxy recorded so) and answers accepted with a lesson
injected, with the conversation each
answered (the request as the client sent it, before any injection, as the trail stores it:
redacted when `privacy.redact_trail` is on). Every read keeps to the `Visibility` it is given."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from proxy.records import EVERYTHING, Visibility
from proxy.storage.repo import TrailRepo, visible


def corrections(
    repo: TrailRepo, reviewed_only: bool, app: str | None, visibility: Visibility = EVERYTHING
) -> tuple[int, Iterator[dict[str, Any]]]:
    """(how many, rows) of active lessons with a correction; rows carry `messages` and `bad_answer`."""
    seen, params = visible(visibility, "l")
    where = f"l.status = 'active' AND l.correction != '' AND {seen}"
    if reviewed_only:
        where += " AND l.reviewed_at IS NOT NULL"
    if app:
        where += " AND l.app = ?"
        params.append(app)
    count = repo.conn.execute(f"SELECT count(*) FROM lessons l WHERE {where}", params).fetchone()[0]
    rows = repo.conn.execute(
        "SELECT l.id, l.app, l.correction, l.bad_answer, l.categories_json, i.request_json, "
        "i.chat_messages_json "
        f"FROM lessons l JOIN interactions i ON i.id = l.interaction_id WHERE {where} ORDER BY l.created_at",
        params,
    )

    def decoded() -> Iterator[dict[str, Any]]:
        for row in rows:
            yield {
                "lesson_id": row["id"],
                "app": row["app"],
                "messages": conversation(row),
                "correction": row["correction"],
                "bad_answer": row["bad_answer"],
                "categories": orjson.loads(row["categories_json"]),
            }

    return int(count), decoded()


def conversation(row: Any) -> list[dict[str, Any]]:
    """The conversation a turn answered, as chat messages: a translated API's (Responses,
    Anthropic messages) kept beside what the client sent, else the chat request's own."""
    if row["chat_messages_json"] is not None:
        messages: list[dict[str, Any]] = orjson.loads(row["chat_messages_json"])
        return messages
    return list(orjson.loads(row["request_json"]).get("messages") or [])


def preferences(
    repo: TrailRepo, app: str | None, visibility: Visibility = EVERYTHING
) -> list[dict[str, Any]]:
    """Feedback saying one answer was preferred over another to the same conversation, each pair
    once (explicit and implicit feedback may name the same one), both answers in sight."""
    chosen_seen, chosen_params = visible(visibility, "chosen")
    rejected_seen, rejected_params = visible(visibility, "rejected")
    where = f"f.preferred_over IS NOT NULL AND {chosen_seen} AND {rejected_seen}"
    params = [*chosen_params, *rejected_params]
    if app:
        where += " AND chosen.app = ?"
        params.append(app)
    rows = repo.conn.execute(
        "SELECT f.id, f.interaction_id, f.preferred_over, chosen.request_json, chosen.chat_messages_json, "
        "chosen.response_text AS chosen_text, rejected.response_text AS rejected_text FROM feedback f "
        "JOIN interactions chosen ON chosen.id = f.interaction_id "
        f"JOIN interactions rejected ON rejected.id = f.preferred_over WHERE {where} ORDER BY f.created_at",
        params,
    )
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        pairs.setdefault(
            (row["interaction_id"], row["preferred_over"]),
            {
                "feedback_id": row["id"],
                "messages": conversation(row),
                "chosen": row["chosen_text"],
                "rejected": row["rejected_text"],
            },
        )
    return list(pairs.values())


def accepted(
    repo: TrailRepo, reviewed_only: bool, app: str | None, visibility: Visibility = EVERYTHING
) -> list[dict[str, Any]]:
    """Success next to failure: answers given with a lesson injected that drew positive feedback
    and no negative, each beside the answer that failed when the lesson was made (its
    `bad_answer`), once per answer and lesson. The conversation is the accepted turn's, as the
    client sent it (without the injected note), so a model trained on it learns the answer
    without the lesson."""
    seen, params = visible(visibility, "i")
    where = (
        f"f.negative = 0 AND l.status = 'active' AND {seen} AND NOT EXISTS "
        "(SELECT 1 FROM feedback n WHERE n.interaction_id = i.id AND n.negative = 1)"
    )
    if reviewed_only:
        where += " AND l.reviewed_at IS NOT NULL"
    if app:
        where += " AND i.app = ?"
        params.append(app)
    rows = repo.conn.execute(
        "SELECT DISTINCT i.id, l.id AS lesson_id, i.created_at, i.request_json, i.chat_messages_json, "
        "i.response_text, l.bad_answer FROM feedback f JOIN interactions i ON i.id = f.interaction_id "
        "JOIN json_each(i.injected_json) j ON 1 = 1 "
        "JOIN lessons l ON l.id = json_extract(j.value, '$.lesson_id') "
        f"WHERE {where} ORDER BY i.created_at, i.id",
        params,
    )
    return [
        {
            "interaction_id": row["id"],
            "lesson_id": row["lesson_id"],
            "messages": conversation(row),
            "chosen": row["response_text"] or "",
            "rejected": row["bad_answer"],
        }
        for row in rows
    ]


def paired(repo: TrailRepo, chosen: str) -> set[str]:
    """The interactions `chosen` was already said to beat."""
    rows = repo.conn.execute(
        "SELECT preferred_over FROM feedback WHERE interaction_id = ? AND preferred_over IS NOT NULL",
        (chosen,),
    )
    return {row["preferred_over"] for row in rows}


def regenerated_by(repo: TrailRepo, chosen: str, session_id: str | None) -> list[str]:
    """The interactions of `chosen`'s session that it regenerated (their implicit `regenerate`
    feedback names it); bounded by the session."""
    if not session_id:
        return []
    rows = repo.conn.execute(
        "SELECT f.interaction_id FROM feedback f JOIN interactions i ON i.id = f.interaction_id "
        "WHERE i.session_id = ? AND f.signal = 'regenerate' AND f.source = 'implicit' "
        "AND json_extract(f.metadata_json, '$.regenerated_by') = ? ORDER BY f.created_at",
        (session_id, chosen),
    )
    return list(dict.fromkeys(row["interaction_id"] for row in rows))
