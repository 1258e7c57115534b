"""A lesson's other trigger questions (m011): one correction, several questions that should bring
it back. Each is a point of its own in the vector index, carrying the lesson's payload (so the
injected text is the lesson's own question and correction: a trigger, another user's words,
is matched against and never shown) and its own question for the lexical evidence (`trigger`).

Point ids are derived from the lesson id and the trigger's slot, so a removed lesson's points
are found without its rows (an erased lesson's triggers are gone with it)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from proxy.storage import rows
from proxy.storage.db import Connection

MAX_TRIGGERS = 8  # besides the lesson's own question; past it, a lesson takes no more
MAX_AGAINST = 4  # questions it was wrong for (source `against`): matched to keep it away
SLOTS = MAX_TRIGGERS + MAX_AGAINST
WORD = re.compile(r"\w+")
_NAMESPACE = uuid.UUID("8d1f6f4e-3f1c-4d7e-9a55-1c0b7e2f9a10")


@dataclass(frozen=True)
class Trigger:
    lesson_id: str
    slot: int
    question: str
    source: str  # merged | rephrase | accepted | against (a question it was wrong for)
    interaction_id: str | None
    vector: list[float] | None = None


def point_id(lesson_id: str, slot: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{lesson_id}/{slot}"))


def point_ids(lesson_id: str, held: Sequence[Trigger] = ()) -> list[str]:
    """The index points a lesson's triggers may hold, but for those of `held` (a trigger erased
    leaves its slot empty)."""
    taken = {t.slot for t in held}
    return [point_id(lesson_id, slot) for slot in range(SLOTS) if slot not in taken]


def every_point(lesson_ids: Sequence[str]) -> list[str]:
    """Every index point removed lessons may hold: their own question's and every slot's."""
    return [p for lesson_id in lesson_ids for p in (lesson_id, *point_ids(lesson_id))]


def listed(conn: Connection, lesson_id: str) -> list[dict[str, str]]:
    """A lesson's triggers as the API and the CLI show them: the question, and where it came from."""
    return [{"question": t.question, "source": t.source} for t in of(conn, [lesson_id]).get(lesson_id, ())]


def _same(text: str) -> str:
    """Words only, case folded: "How long is the refund window ?!" says nothing new."""
    return " ".join(WORD.findall(text.casefold()))


def add(
    conn: Connection, lesson_id: str, question: str, source: str, interaction_id: str | None, asked: str
) -> bool:
    """Add `question` to the lesson (`asked`: the lesson's own question); False when it says
    nothing new (the same words as its question or another trigger) or the lesson holds as many
    of that kind (for, or `against`) as it takes. The caller bumps the lesson's version in the
    same transaction, so every index picks the trigger up."""
    held = conn.execute(
        "SELECT slot, question, source FROM lesson_triggers WHERE lesson_id = ?", (lesson_id,)
    ).fetchall()
    if not question.strip() or _same(question) in {_same(q) for q in (asked, *(r[1] for r in held))}:
        return False
    against = source == "against"
    if sum(1 for r in held if (r[2] == "against") == against) >= (MAX_AGAINST if against else MAX_TRIGGERS):
        return False
    taken = {int(r[0]) for r in held}
    free = next(slot for slot in range(SLOTS) if slot not in taken)
    conn.execute(
        "INSERT INTO lesson_triggers (lesson_id, slot, question, source, interaction_id, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (lesson_id, free, question, source, interaction_id, time.time()),
    )
    return True


def of(conn: Connection, lesson_ids: Sequence[str]) -> dict[str, list[Trigger]]:
    """Each lesson's triggers in slot order, with their stored embeddings."""
    found: dict[str, list[Trigger]] = {}
    for marks, chunk in rows.in_chunks(list(lesson_ids)):
        for row in conn.execute(
            "SELECT lesson_id, slot, question, source, interaction_id, embedding FROM lesson_triggers "
            f"WHERE lesson_id IN ({marks}) ORDER BY lesson_id, slot",
            chunk,
        ):
            blob = row[5]
            vector = rows.decode_vector(bytes(blob)) if blob else None
            trigger = Trigger(row[0], int(row[1]), row[2], row[3], row[4], vector)
            found.setdefault(trigger.lesson_id, []).append(trigger)
    return found


def set_embedding(conn: Connection, lesson_id: str, slot: int, vector: Sequence[float], model: str) -> None:
    conn.execute(
        "UPDATE lesson_triggers SET embedding = ?, embedding_model = ? WHERE lesson_id = ? AND slot = ?",
        (rows.encode_vector(vector), model, lesson_id, slot),
    )


def active_embeddings(conn: Connection) -> list[tuple[str, str, str, bytes]]:
    """(point id, app, tenant, embedding bytes) of every embedded trigger of an active lesson."""
    sql = (
        "SELECT t.lesson_id, t.slot, l.app, coalesce(l.tenant, ''), t.embedding FROM lesson_triggers t "
        "JOIN lessons l ON l.id = t.lesson_id WHERE l.status = 'active' AND t.embedding IS NOT NULL"
    )
    return [(point_id(r[0], int(r[1])), r[2], r[3], bytes(r[4])) for r in conn.execute(sql)]


def active_point_ids(conn: Connection) -> set[str]:
    sql = (
        "SELECT t.lesson_id, t.slot FROM lesson_triggers t JOIN lessons l ON l.id = t.lesson_id "
        "WHERE l.status = 'active'"
    )
    return {point_id(r[0], int(r[1])) for r in conn.execute(sql)}
