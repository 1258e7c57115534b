"""What storing the trail costs the writer, per interaction: production-shaped rows written in
the writer's batches (256) to a fresh SQLite trail (or the PostgreSQL database `--database`
names), timed: the writer's CPU per row and interactions stored per second. `--tree` imports
Loopwise from another checkout, to compare two versions side by side in one run:

    git worktree add /tmp/before <rev> && python bench/trail_write.py --tree /tmp/before --tree .
    python bench/trail_write.py --database postgresql://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import random, sys, time, uuid, json
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from proxy.records import InjectedLesson, Interaction
from proxy.storage import TrailRepo
from proxy.storage.db import connect
rows, batch, seed = int(sys.argv[2]), 256, int(sys.argv[4])
rng = random.Random(seed)
words = "the refund window order shipping account invoice plan upgrade policy days support".split()
def text(n): return " ".join(rng.choice(words) for _ in range(n))
target = sys.argv[3]
repo = TrailRepo(connect(target if target.startswith("postgresql://") else Path(target)))
now, made = time.time(), []
for i in range(rows):
    question, answer = text(rng.randint(8, 300)), text(rng.randint(8, 300))
    injected = (InjectedLesson(str(uuid.UUID(int=rng.randrange(2000) + 1)), 0.8, "corrections"),) if rng.random() < 0.1 else ()
    messages = [{"role": "user", "content": question}]
    made.append(Interaction(
        id=f"chatcmpl-{uuid.uuid4().hex}", created_at=now - 30 * 86400 + i * 26, session_id=f"s-{i // 4}",
        user_id=f"u{rng.randrange(2000)}", user_role=None, app=f"app-{rng.randrange(12)}", tenant=None,
        requested_model=rng.choice(("a", "b", "c", "d")), served_model="a", policy="default", policy_version="v",
        arm=rng.choice(("treatment",) * 9 + ("control",)), stream=False, request={"messages": messages},
        sent_messages=messages, injected=injected, recall_status=rng.choice(("ok", "skipped")), recall_ms=1.0,
        recall_error=None, question=question, response={"choices": [{"message": {"content": answer}}]},
        response_text=answer, finish_reason="stop", prompt_tokens=100, completion_tokens=50, latency_ms=900.0,
        ttft_ms=100.0, overhead_ms=1.0, status="ok", cost_usd=0.0001))
began, wall = time.process_time(), time.perf_counter()
for start in range(0, rows, batch):
    repo.insert_interactions(made[start:start + batch])
wall = time.perf_counter() - wall
print(json.dumps({"cpu_us_per_row": (time.process_time() - began) / rows * 1e6, "rows_per_s": rows / wall}))
"""


def one(tree: Path, rows: int, seed: int, database: str | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        target = database or str(Path(folder) / "t.db")
        found = subprocess.run(
            [sys.executable, "-c", CHILD, str(tree.resolve()), str(rows), target, str(seed)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    return dict(json.loads(found.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path, action="append", help="a checkout to import Loopwise from")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database", help="a PostgreSQL URL to write to instead of a new SQLite file")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the medians")
    args = parser.parse_args()
    trees = args.tree or [Path(__file__).resolve().parent.parent]
    results: dict[str, list[dict[str, float]]] = {str(t): [] for t in trees}
    order = random.Random(1)
    for run in range(args.runs):  # interleaved, so a noisy moment hits every tree alike
        for tree in order.sample(trees, len(trees)):
            results[str(tree)].append(one(tree, args.rows, seed=run, database=args.database))
    summary = {}
    for tree, values in results.items():
        cpu = statistics.median(v["cpu_us_per_row"] for v in values)
        rate = statistics.median(v["rows_per_s"] for v in values)
        print(f"{tree}: median {cpu:.0f} us of the writer's CPU and {rate:.0f} interactions/s stored")
        summary[tree] = {"cpu_us_per_row": round(cpu, 1), "rows_per_s": round(rate), "rows": args.rows}
    if args.json:
        print(json.dumps(summary[str(trees[-1])]))


if __name__ == "__main__":
    main()
