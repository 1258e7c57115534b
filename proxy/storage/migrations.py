"""Numbered, append-only schema migrations, as they landed in SQLite (m001-m009). Never edit one
that shipped: add the next in `schema`, which also holds their PostgreSQL forms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple


class Migration(NamedTuple):
    """A migration's SQL for SQLite, and for PostgreSQL where that differs from the same DDL in
    PostgreSQL's types (`schema.postgres_ddl`): a backfill of rows a new PostgreSQL DB cannot
    have, a text index, a trigger. `then`: a step in Python after the SQL, in the same
    transaction (a backfill SQL cannot write the same on both backends)."""

    name: str
    sql: str
    postgresql: str | None = None
    then: Callable[[Any], None] | None = None


# m009: one table of cells per span, hourly and daily (the same columns); frozen with m009.
ROLLUP_TABLE = """
        CREATE TABLE {table} (
            bucket INTEGER NOT NULL,
            app TEXT NOT NULL,
            tenant TEXT NOT NULL,
            requested_model TEXT NOT NULL,
            policy TEXT NOT NULL,
            arm TEXT NOT NULL,
            recall_status TEXT NOT NULL,
            interactions INTEGER NOT NULL DEFAULT 0,
            with_feedback INTEGER NOT NULL DEFAULT 0,
            negative INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            tokens INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (bucket, app, tenant, requested_model, policy, arm, recall_status)
        );
        INSERT INTO {table} (bucket, app, tenant, requested_model, policy, arm, recall_status,
                interactions, with_feedback, negative, cost_usd, tokens)
            SELECT bucket, app, tenant, requested_model, policy, arm, recall_status, count(*),
                count(verdict), coalesce(sum(verdict), 0), coalesce(sum(cost_usd), 0),
                coalesce(sum(tokens), 0)
            FROM (
                SELECT CAST(i.created_at / {span} AS INTEGER) AS bucket, i.app AS app,
                    coalesce(i.tenant, '') AS tenant, i.requested_model AS requested_model,
                    coalesce(i.policy, '-') AS policy, i.arm AS arm, i.recall_status AS recall_status,
                    i.cost_usd, coalesce(i.prompt_tokens, 0) + coalesce(i.completion_tokens, 0) AS tokens,
                    (SELECT max(f.negative) FROM feedback f
                     WHERE f.interaction_id = i.id AND f.negative IS NOT NULL) AS verdict
                FROM interactions i
            )
            GROUP BY 1, 2, 3, 4, 5, 6, 7
"""


LANDED: tuple[Migration, ...] = (
    Migration(
        "m001_initial",
        """
        CREATE TABLE interactions (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            session_id TEXT,
            user_id TEXT,
            user_role TEXT,
            app TEXT NOT NULL,
            tenant TEXT,
            requested_model TEXT NOT NULL,
            served_model TEXT,
            policy TEXT,
            policy_version TEXT,
            arm TEXT NOT NULL,
            stream INTEGER NOT NULL,
            request_json TEXT NOT NULL,
            sent_messages_json TEXT NOT NULL,
            injected_json TEXT NOT NULL,
            recall_status TEXT NOT NULL,
            recall_ms REAL,
            recall_error TEXT,
            question TEXT NOT NULL,
            response_json TEXT,
            response_text TEXT NOT NULL,
            finish_reason TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            latency_ms REAL NOT NULL,
            ttft_ms REAL,
            overhead_ms REAL NOT NULL,
            status TEXT NOT NULL,
            error_json TEXT
        );
        CREATE INDEX interactions_session ON interactions (session_id, created_at);
        CREATE INDEX interactions_created ON interactions (created_at);

        CREATE TABLE lessons (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            status TEXT NOT NULL,
            app TEXT NOT NULL,
            tenant TEXT,
            user_id TEXT,
            interaction_id TEXT NOT NULL UNIQUE REFERENCES interactions (id),
            feedback_ids_json TEXT NOT NULL,
            question TEXT NOT NULL,
            bad_answer TEXT NOT NULL,
            categories_json TEXT NOT NULL,
            comment TEXT NOT NULL,
            correction TEXT NOT NULL,
            policy TEXT,
            version INTEGER NOT NULL DEFAULT 1,
            indexed_version INTEGER NOT NULL DEFAULT 0,
            embedding BLOB,
            embedding_model TEXT,
            times_injected INTEGER NOT NULL DEFAULT 0,
            negative_after INTEGER NOT NULL DEFAULT 0,
            positive_after INTEGER NOT NULL DEFAULT 0,
            review_note TEXT
        );
        CREATE INDEX lessons_status ON lessons (status, updated_at);
        CREATE INDEX lessons_unindexed ON lessons (id) WHERE indexed_version != version;

        CREATE TABLE feedback (
            id TEXT PRIMARY KEY,
            interaction_id TEXT NOT NULL REFERENCES interactions (id),
            created_at REAL NOT NULL,
            source TEXT NOT NULL,
            user_id TEXT,
            user_role TEXT,
            rating INTEGER,
            score REAL,
            score_min REAL,
            score_max REAL,
            categories_json TEXT NOT NULL,
            comment TEXT,
            correction TEXT,
            dimensions_json TEXT NOT NULL,
            preferred_over TEXT REFERENCES interactions (id),
            signal TEXT,
            metadata_json TEXT NOT NULL,
            lesson_id TEXT REFERENCES lessons (id)
        );
        CREATE INDEX feedback_interaction ON feedback (interaction_id, created_at);
        """,
    ),
    Migration(
        "m002_effect",
        """
        ALTER TABLE interactions ADD COLUMN shadow_json TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE feedback ADD COLUMN negative INTEGER;
        UPDATE feedback SET negative = CASE
            WHEN rating = -1 OR categories_json != '[]' OR correction IS NOT NULL
                OR signal IN ('regenerate', 'abandon') THEN 1
            WHEN score IS NOT NULL AND coalesce(score_max, 1) > coalesce(score_min, 0) THEN
                (score - coalesce(score_min, 0)) / (coalesce(score_max, 1) - coalesce(score_min, 0)) < 0.5
            WHEN rating = 1 THEN 0
        END;
        ALTER TABLE lessons ADD COLUMN times_held_out INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE lessons ADD COLUMN control_negative INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE lessons ADD COLUMN control_positive INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE lessons ADD COLUMN reviewed_at REAL;
        CREATE INDEX feedback_created ON feedback (created_at)
        """,
    ),
    Migration(
        "m003_access",
        """
        CREATE TABLE keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            scopes_json TEXT NOT NULL,
            apps_json TEXT NOT NULL,
            tenant TEXT,
            user_role TEXT,
            created_at REAL NOT NULL,
            revoked_at REAL
        );
        CREATE INDEX interactions_user ON interactions (user_id);
        CREATE INDEX interactions_app ON interactions (app, tenant, created_at);
        CREATE INDEX lessons_interaction_user ON lessons (user_id);
        CREATE INDEX feedback_user ON feedback (user_id)
        """,
    ),
    Migration(
        "m004_endpoints",
        """
        ALTER TABLE interactions ADD COLUMN endpoint TEXT NOT NULL DEFAULT 'chat.completions';
        ALTER TABLE interactions ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE interactions ADD COLUMN cost_usd REAL;
        ALTER TABLE interactions ADD COLUMN upstream_id TEXT;
        ALTER TABLE interactions ADD COLUMN chat_messages_json TEXT
        """,
    ),
    Migration(
        "m005_recall_stage",
        """
        ALTER TABLE interactions ADD COLUMN recall_stage TEXT
        """,
    ),
    Migration(
        "m006_spans",
        """
        ALTER TABLE feedback ADD COLUMN span_json TEXT
        """,
    ),
    Migration(
        "m007_console",
        """
        ALTER TABLE interactions ADD COLUMN key_id TEXT;
        CREATE INDEX interactions_report ON interactions (
            created_at, app, tenant, requested_model, policy, arm, recall_status, user_id, key_id,
            prompt_tokens, completion_tokens, cost_usd, id
        );
        DROP INDEX interactions_created;
        CREATE TABLE injections (
            lesson_id TEXT NOT NULL,
            interaction_id TEXT NOT NULL,
            created_at REAL NOT NULL,
            injected INTEGER NOT NULL
        );
        CREATE INDEX injections_lesson ON injections (lesson_id, created_at);
        CREATE INDEX injections_interaction ON injections (interaction_id);
        INSERT INTO injections
            SELECT DISTINCT json_extract(j.value, '$.lesson_id'), i.id, i.created_at, 1
            FROM interactions i, json_each(i.injected_json) j;
        INSERT INTO injections
            SELECT DISTINCT json_extract(j.value, '$.lesson_id'), i.id, i.created_at, 0
            FROM interactions i, json_each(i.shadow_json) j
        """,
    ),
    Migration(
        "m008_text_search",  # the first 2,000 characters of each question and answer, as words
        """
        CREATE VIRTUAL TABLE interactions_text USING fts5(
            question, response_text, content='interactions', content_rowid='rowid',
            tokenize='unicode61 remove_diacritics 2'
        );
        INSERT INTO interactions_text (rowid, question, response_text)
            SELECT rowid, substr(question, 1, 2000), substr(response_text, 1, 2000) FROM interactions;
        CREATE TRIGGER interactions_text_insert AFTER INSERT ON interactions BEGIN
            INSERT INTO interactions_text (rowid, question, response_text)
            VALUES (new.rowid, substr(new.question, 1, 2000), substr(new.response_text, 1, 2000));
        END;
        CREATE TRIGGER interactions_text_delete AFTER DELETE ON interactions BEGIN
            INSERT INTO interactions_text (interactions_text, rowid, question, response_text)
            VALUES ('delete', old.rowid, substr(old.question, 1, 2000), substr(old.response_text, 1, 2000));
        END;
        CREATE TRIGGER interactions_text_update AFTER UPDATE OF question, response_text ON interactions BEGIN
            INSERT INTO interactions_text (interactions_text, rowid, question, response_text)
            VALUES ('delete', old.rowid, substr(old.question, 1, 2000), substr(old.response_text, 1, 2000));
            INSERT INTO interactions_text (rowid, question, response_text)
            VALUES (new.rowid, substr(new.question, 1, 2000), substr(new.response_text, 1, 2000));
        END
        """,
    ),
    Migration(
        "m009_rollups",  # proxy/storage/rollups.py keeps these cells as the trail is written
        ";\n".join(
            ROLLUP_TABLE.format(table=table, span=span)
            for table, span in (("traffic_hourly", 3600), ("traffic_daily", 86400))
        ),
    ),
)
