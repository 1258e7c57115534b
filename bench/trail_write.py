"""What storing the trail costs the writer, per interaction: production-shaped rows written in
the writer's batches (256) to a fresh SQLite trail, timed. `--tree` imports Loopwise from another
checkout, to compare two versions side by side in one run:

    git worktree add /tmp/before <rev> && python bench/trail_write.py --tree /tmp/before --tree .
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
repo = TrailRepo(connect(Path(sys.argv[3])))
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
began = time.process_time()
for start in range(0, rows, batch):
    repo.insert_interactions(made[start:start + batch])
print(json.dumps({"cpu_us_per_row": (time.process_time() - began) / rows * 1e6}))
"""


def one(tree: Path, rows: int, seed: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        found = subprocess.run(
            [sys.executable, "-c", CHILD, str(tree.resolve()), str(rows), str(Path(folder) / "t.db"), str(seed)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    return float(json.loads(found.stdout.strip().splitlines()[-1])["cpu_us_per_row"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path, action="append", help="a checkout to import Loopwise from")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    trees = args.tree or [Path(__file__).resolve().parent.parent]
    results: dict[str, list[float]] = {str(t): [] for t in trees}
    order = random.Random(1)
    for run in range(args.runs):  # interleaved, so a noisy moment hits every tree alike
        for tree in order.sample(trees, len(trees)):
            results[str(tree)].append(one(tree, args.rows, seed=run))
    for tree, values in results.items():
        print(f"{tree}: median {statistics.median(values):.0f} us of CPU per interaction stored ({values})")


if __name__ == "__main__":
    main()
