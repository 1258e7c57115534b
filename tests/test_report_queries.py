"""The report's buckets are counted as integers in SQL and named in Python: the names must be
the ones SQLite's strftime gives, for every bucket size, across years, weeks and leap days. A
week is named after its Monday, also when it runs into a new year (one bucket of seven days,
not the two `%W` would split it into)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from proxy.storage.db import connect
from proxy.storage.report_queries import BUCKETS, bucket_name, bucket_sql


@pytest.mark.parametrize("bucket", list(BUCKETS))
def test_bucket_names_match_sqlite_strftime(tmp_path: Path, bucket: str) -> None:
    conn = connect(tmp_path / "t.db")
    rng = random.Random(5)
    moments = [rng.uniform(0, 4_102_444_800) for _ in range(2000)]  # 1970 to 2100
    moments += [951_782_400.0 + d for d in (-1, 0, 86_399.5, 86_400)]  # around 2000-02-29
    monday = ", '-6 days', 'weekday 1'" if bucket == "week" else ""
    for moment in moments:
        number, expected = conn.execute(
            f"SELECT {bucket_sql(bucket, '?')}, strftime(?, ?, 'unixepoch'{monday})",
            (moment, BUCKETS[bucket], moment),
        ).fetchone()
        assert bucket_name(bucket, number) == expected, (bucket, moment)
