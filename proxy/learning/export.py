"""Fine-tuning records from what users corrected: OpenAI chat JSONL for supervised fine-tuning,
and chosen/rejected pairs in OpenAI's preference (DPO) format."""

from __future__ import annotations

from typing import Any, Literal

ExportFormat = Literal["sft", "preference"]


def _conversation(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation up to the answer that was judged (any trailing assistant turn dropped)."""
    kept = list(messages)
    while kept and kept[-1].get("role") == "assistant":
        kept.pop()
    return kept


def sft_record(row: dict[str, Any]) -> dict[str, Any] | None:
    conversation = _conversation(row["messages"])
    if not conversation:
        return None
    return {"messages": [*conversation, {"role": "assistant", "content": row["correction"]}]}


def preference_record(messages: list[dict[str, Any]], chosen: str, rejected: str) -> dict[str, Any] | None:
    conversation = _conversation(messages)
    if not conversation or not chosen or not rejected or chosen == rejected:
        return None
    return {
        "input": {"messages": conversation},
        "preferred_output": [{"role": "assistant", "content": chosen}],
        "non_preferred_output": [{"role": "assistant", "content": rejected}],
    }
