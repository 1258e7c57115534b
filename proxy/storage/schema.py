"""The schema on both backends: the migrations in order (`MIGRATIONS`), each with its SQLite
SQL and its PostgreSQL form (m010 on is written for both), and the DDL types PostgreSQL reads."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from proxy.storage.migrations import LANDED, ROLLUP_TABLE, Migration


def postgres_ddl(sql: str) -> str:
    """SQLite DDL in PostgreSQL's types: REAL is 4 bytes there (a timestamp would lose minutes),
    so DOUBLE PRECISION; every INTEGER a BIGINT (a sum of tokens outgrows 32 bits); BLOB is BYTEA."""
    for sqlite_type, postgres_type in (
        ("REAL", "DOUBLE PRECISION"),
        ("INTEGER", "BIGINT"),
        ("BLOB", "BYTEA"),
    ):
        sql = re.sub(rf"\b{sqlite_type}\b", postgres_type, sql)
    return sql


_LANDED_SQL = {m.name: m.sql for m in LANDED}


def _before(sql: str, backfill: str) -> str:
    """A landed migration's statements up to its backfill (a new PostgreSQL DB has no rows)."""
    return sql.split(backfill)[0].rstrip(" \n;")


# PostgreSQL support came with m010: a PostgreSQL DB is new when these run, so they leave out
# the backfills of m002, m007 and m009 (no rows yet), and m008's text index is PostgreSQL's own.
_POSTGRES = {
    "m002_effect": postgres_ddl(
        """
        ALTER TABLE interactions ADD COLUMN shadow_json TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE feedback ADD COLUMN negative INTEGER;
        ALTER TABLE lessons ADD COLUMN times_held_out INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE lessons ADD COLUMN control_negative INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE lessons ADD COLUMN control_positive INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE lessons ADD COLUMN reviewed_at REAL;
        CREATE INDEX feedback_created ON feedback (created_at)
        """
    ),
    "m007_console": postgres_ddl(_before(_LANDED_SQL["m007_console"], "INSERT INTO injections")),
    "m008_text_search": """
        CREATE INDEX interactions_text ON interactions USING gin (
            to_tsvector('simple', left(question, 2000) || ' ' || left(response_text, 2000))
        )
    """,
    "m009_rollups": ";\n".join(
        postgres_ddl(_before(ROLLUP_TABLE.format(table=table, span=0), "INSERT INTO"))
        for table in ("traffic_hourly", "traffic_daily")
    ),
}

# m010: replicas. Each lesson change (a new lesson, a new version, a removal) takes the next
# number of one sequence, and each index (an embedded one per replica, or a shared server)
# keeps in `index_cursors` the last number it applied: an index follows the DB by reading what
# came after. Fleet-wide jobs note their last run in `job_runs`; the implicit signals keep each
# session's latest request in `session_heads`, so a session's turns may land on any replica;
# `console_signouts` ends a signed-out console session on every replica.
_REPLICAS_COMMON = """
        CREATE INDEX lessons_changed ON lessons (changed_seq);
        DROP INDEX lessons_unindexed;
        CREATE TABLE lesson_removals (lesson_id TEXT NOT NULL, changed_seq INTEGER NOT NULL);
        CREATE INDEX lesson_removals_changed ON lesson_removals (changed_seq);
        CREATE TABLE index_cursors (index_id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
        CREATE TABLE job_runs (name TEXT PRIMARY KEY, last_run_at REAL NOT NULL);
        CREATE TABLE session_heads (
            key TEXT PRIMARY KEY,
            interaction_id TEXT NOT NULL,
            seen_at REAL NOT NULL,
            size INTEGER NOT NULL,
            whole BLOB NOT NULL,
            asked BLOB,
            regenerated TEXT
        );
        CREATE INDEX session_heads_seen ON session_heads (seen_at);
        CREATE TABLE console_signouts (digest TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)
"""
_NEXT_CHANGE = "UPDATE change_seq SET seq = seq + 1"
_REPLICAS_SQLITE = f"""
        ALTER TABLE lessons ADD COLUMN changed_seq INTEGER NOT NULL DEFAULT 0;
        UPDATE lessons SET changed_seq = rowid;
        CREATE TABLE change_seq (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
        INSERT INTO change_seq VALUES (1, (SELECT coalesce(max(rowid), 0) FROM lessons));
        CREATE TRIGGER lessons_changed_insert AFTER INSERT ON lessons BEGIN
            {_NEXT_CHANGE};
            UPDATE lessons SET changed_seq = (SELECT seq FROM change_seq) WHERE id = new.id;
        END;
        CREATE TRIGGER lessons_changed_update AFTER UPDATE OF version ON lessons
        WHEN new.version IS NOT old.version BEGIN
            {_NEXT_CHANGE};
            UPDATE lessons SET changed_seq = (SELECT seq FROM change_seq) WHERE id = new.id;
        END;
        CREATE TRIGGER lessons_removed AFTER DELETE ON lessons BEGIN
            {_NEXT_CHANGE};
            INSERT INTO lesson_removals VALUES (old.id, (SELECT seq FROM change_seq));
        END;
        {_REPLICAS_COMMON}
"""
# the trigger takes the write lock before it numbers a change and holds it to the commit, so
# changes commit in the order of their numbers and a follower reading past N misses none
_REPLICAS_POSTGRES = postgres_ddl(
    """
        ALTER TABLE lessons ADD COLUMN changed_seq INTEGER NOT NULL DEFAULT 0;
        CREATE SEQUENCE lesson_changes;
        CREATE FUNCTION lesson_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                PERFORM pg_advisory_xact_lock(7370001);
                INSERT INTO lesson_removals VALUES (OLD.id, nextval('lesson_changes'));
                RETURN OLD;
            END IF;
            IF TG_OP = 'INSERT' OR NEW.version IS DISTINCT FROM OLD.version THEN
                PERFORM pg_advisory_xact_lock(7370001);
                NEW.changed_seq := nextval('lesson_changes');
            END IF;
            RETURN NEW;
        END $$;
    """
    + _REPLICAS_COMMON
    + """;
        CREATE TRIGGER lesson_changed BEFORE INSERT OR UPDATE OR DELETE ON lessons
            FOR EACH ROW EXECUTE FUNCTION lesson_changed()
    """
)

# m011: a lesson's other trigger questions (`storage/triggers.py`): a question that drew the
# same correction, a user's rephrasing of the failed one, a question the lesson then helped.
_TRIGGERS = """
        CREATE TABLE lesson_triggers (
            lesson_id TEXT NOT NULL,
            slot INTEGER NOT NULL,
            question TEXT NOT NULL,
            source TEXT NOT NULL,
            interaction_id TEXT,
            created_at REAL NOT NULL,
            embedding BLOB,
            embedding_model TEXT,
            PRIMARY KEY (lesson_id, slot)
        );
        CREATE INDEX lesson_triggers_interaction ON lesson_triggers (interaction_id)
"""

# m012: what two lessons teaching the same correction share, case folded in full and spacing
# collapsed (`repo.correction_key`), so a correction taught again joins its lesson on both backends.
_CORRECTION_KEY = """
        ALTER TABLE lessons ADD COLUMN correction_key TEXT NOT NULL DEFAULT '';
        CREATE INDEX lessons_correction_key ON lessons (app, correction_key)
"""


def _key_corrections(conn: Any) -> None:
    """m012's backfill, frozen with it: `records.correction_key` as it was then (if that ever
    changes, a new migration keys every lesson again)."""
    found = conn.execute("SELECT id, correction FROM lessons WHERE correction != ''").fetchall()
    for lesson_id, correction in found:
        said = " ".join(correction.casefold().split())
        key = hashlib.sha256(said.encode()).hexdigest() if said else ""
        conn.execute("UPDATE lessons SET correction_key = ? WHERE id = ?", (key, lesson_id))


# m013: users' standing preferences (`learning/preferences`), one row a dimension, and three more
# dimensions of each turn: why it asked for feedback, the environment, the model's version.
_PREFERENCES = """
        CREATE TABLE preferences (
            tenant TEXT NOT NULL,
            app TEXT NOT NULL,
            user_id TEXT NOT NULL,
            dimension TEXT NOT NULL,
            value TEXT NOT NULL,
            strength TEXT NOT NULL,
            evidence_json TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (tenant, user_id, app, dimension)
        );
        CREATE INDEX preferences_updated ON preferences (updated_at);
        CREATE INDEX preferences_user ON preferences (user_id);
        ALTER TABLE interactions ADD COLUMN feedback_wanted TEXT;
        ALTER TABLE interactions ADD COLUMN environment TEXT;
        ALTER TABLE interactions ADD COLUMN model_version TEXT;
        CREATE INDEX interactions_asked ON interactions (feedback_wanted, created_at);
        DROP TABLE traffic_hourly;
        DROP TABLE traffic_daily;
"""
# the cells, keyed by the two new dimensions as well; frozen with m013 (a trail from before it
# has neither: '' for both). {bucket}: each backend's truncating division of created_at by {span}.
_CELLS = """
        CREATE TABLE {table} (
            bucket INTEGER NOT NULL,
            app TEXT NOT NULL,
            tenant TEXT NOT NULL,
            requested_model TEXT NOT NULL,
            policy TEXT NOT NULL,
            arm TEXT NOT NULL,
            recall_status TEXT NOT NULL,
            environment TEXT NOT NULL,
            model_version TEXT NOT NULL,
            interactions INTEGER NOT NULL DEFAULT 0,
            with_feedback INTEGER NOT NULL DEFAULT 0,
            negative INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            tokens INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (bucket, app, tenant, requested_model, policy, arm, recall_status, environment,
                model_version)
        );
        INSERT INTO {table} (bucket, app, tenant, requested_model, policy, arm, recall_status, environment,
                model_version, interactions, with_feedback, negative, cost_usd, tokens)
            SELECT bucket, app, tenant, requested_model, policy, arm, recall_status, '', '', count(*),
                count(verdict), coalesce(sum(verdict), 0), coalesce(sum(cost_usd), 0),
                coalesce(sum(tokens), 0)
            FROM (
                SELECT {bucket} AS bucket, i.app AS app,
                    coalesce(i.tenant, '') AS tenant, i.requested_model AS requested_model,
                    coalesce(i.policy, '-') AS policy, i.arm AS arm, i.recall_status AS recall_status,
                    i.cost_usd, coalesce(i.prompt_tokens, 0) + coalesce(i.completion_tokens, 0) AS tokens,
                    (SELECT max(f.negative) FROM feedback f
                     WHERE f.interaction_id = i.id AND f.negative IS NOT NULL) AS verdict
                FROM interactions i
            ) AS cells
            GROUP BY 1, 2, 3, 4, 5, 6, 7"""


def _cells(bucket: str) -> str:
    return ";\n".join(
        _CELLS.format(table=table, bucket=bucket.format(span=span))
        for table, span in (("traffic_hourly", 3600), ("traffic_daily", 86400))
    )


_PREFERENCES_SQLITE = _PREFERENCES + _cells("CAST(i.created_at / {span} AS INTEGER)")
_PREFERENCES_POSTGRES = postgres_ddl(_PREFERENCES + _cells("trunc(i.created_at / {span})::bigint"))


MIGRATIONS: tuple[Migration, ...] = (
    *(m._replace(postgresql=_POSTGRES.get(m.name)) for m in LANDED),
    Migration("m010_replicas", _REPLICAS_SQLITE, _REPLICAS_POSTGRES),
    Migration("m011_lesson_triggers", _TRIGGERS),
    Migration("m012_correction_key", _CORRECTION_KEY, then=_key_corrections),
    Migration("m013_preferences", _PREFERENCES_SQLITE, _PREFERENCES_POSTGRES),
)
