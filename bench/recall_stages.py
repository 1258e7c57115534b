"""Recall's cascade stage by stage, in-process, on the production-like mix (bench/questions.py):
what each stage costs in CPU by turn length, how many turns each stage ends, and what the model
alone on the whole turn (recall before the cascade) cost on the same turns.

    python bench/recall_stages.py [--lessons 100000] [--turns 600] [--out docs/recall-stages.json]

The gate holds the 10 taught lessons plus filler lessons (random vectors), as the load
benchmark's index does. First `--train` turns of one half of the mix's sentences pass through
the cascade as recall would run it (the map and the threshold learn from them); then `--turns`
turns of the other half are measured, the cascade still learning. Times are thread CPU time
(time.thread_time), one turn at a time; the model runs on every turn's window to know whether it
would have matched, but is counted only where the cascade runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import questions
from policies import RecallConfig
from proxy.embeddings.model import FastEmbedder
from proxy.learning.gate import Gate
from proxy.settings import EmbeddingSettings

HERE = Path(__file__).resolve().parent
BUCKETS = ((8, 20), (21, 40), (41, 100), (101, 200), (201, 320))


def cpu_ms(work: Any) -> tuple[Any, float]:
    began = time.thread_time()
    out = work()
    return out, (time.thread_time() - began) * 1000


async def run(args: argparse.Namespace) -> dict[str, Any]:
    embedder = FastEmbedder(EmbeddingSettings(cache_size=0), args.cache / "models")
    await embedder.start()
    static = await embedder.load_static()
    assert static is not None
    model = embedder._run  # the model itself, on this thread: CPU time is then this thread's
    gate = Gate(static, EmbeddingSettings().window_tokens)
    config = RecallConfig()
    taught = np.array([model(q) for q, _ in questions.LESSONS], dtype=np.float32)
    rng = np.random.default_rng(7)  # filler lessons: random unit vectors, as bench/seed.py's
    filler = rng.standard_normal((args.lessons - len(taught), taught.shape[1])).astype(np.float32)
    filler /= np.linalg.norm(filler, axis=1, keepdims=True)
    lessons = [(f"real{i}", "bench", "", v) for i, v in enumerate(taught)]
    lessons += [(f"fill{i}", "bench", "", v) for i, v in enumerate(filler)]
    began = time.perf_counter()
    gate.install(gate.build(lessons))
    build_s = time.perf_counter() - began

    def turn(text: str, timed: bool) -> dict[str, Any]:
        # proxy.chat.recall._through_gate, stage by stage so each is timed, and with the model
        # run on every window to know whether it would have matched (the queue is always idle)
        windows, windows_ms = cpu_ms(lambda: gate.windows(text))
        best, gate_ms = cpu_ms(lambda: gate.best("bench", "", windows))
        assert best is not None
        score, window = best
        version = gate.projection.version
        passed = score >= gate.calibration("bench", "").threshold
        explored = not passed and gate.calibration("bench", "").explore()
        vector, model_ms = cpu_ms(lambda: model(windows.texts[window]))  # run always, timed apart
        matched = float(np.max(taught @ np.asarray(vector, dtype=np.float32))) >= config.min_score
        if passed or explored:  # what recall would learn from
            gate.learn(("bench", ""), windows.vectors[window], vector, score, matched, explored, version)
        row = {"words": len(text.split()), "near": "n" in text.rsplit("#", 1)[-1], "passed": passed}
        if timed:
            whole_ms = cpu_ms(lambda: model(text[:4096]))[1]
            ran = passed or explored
            row |= {
                "windows": len(windows.texts),
                "static_ms": windows_ms,
                "gate_ms": gate_ms,
                "model_ms": model_ms if ran else 0.0,
                "cascade_ms": windows_ms + gate_ms + (model_ms if ran else 0.0),
                "whole_turn_model_ms": whole_ms,
                "would_match": matched,
                "ran": ran,
                "threshold": gate.calibration("bench", "").threshold,
            }
        return row

    def texts(count: int, part: str, run: str) -> list[str]:
        bodies = questions.mix_bodies(count, "m", False, run, part=part)
        return [orjson.loads(b)["messages"][0]["content"] for b in bodies]

    for text in texts(args.train, "train", "w"):  # the traffic the map learns from
        turn(text, timed=False)
    rows = [turn(text, timed=True) for text in texts(args.turns, "test", "s")]
    embedder.close()
    return {
        "lessons": args.lessons,
        "train_turns": args.train,
        "gate_build_s": build_s,
        "map_pairs": gate.projection.pairs,
        "threshold": gate.calibration("bench", "").threshold,
        "rows": rows,
    }


def summary(result: dict[str, Any]) -> dict[str, Any]:
    rows = result["rows"]

    def stats(part: list[dict[str, Any]]) -> dict[str, float]:
        def med(key: str) -> float:
            return statistics.median(r[key] for r in part)

        return {
            "turns": len(part),
            "static_ms_p50": med("static_ms"),
            "gate_ms_p50": med("gate_ms"),
            "model_ran": sum(r["ran"] for r in part) / len(part),
            "cascade_ms_mean": statistics.fmean(r["cascade_ms"] for r in part),
            "cascade_ms_max": max(r["cascade_ms"] for r in part),
            "whole_turn_model_ms_mean": statistics.fmean(r["whole_turn_model_ms"] for r in part),
        }

    out = {"all": stats(rows)}
    for low, high in BUCKETS:
        part = [r for r in rows if low <= r["words"] <= high]
        if part:
            out[f"{low}-{high} words"] = stats(part)
    matched = [r for r in rows if r["would_match"]]
    out["would match: kept by the gate"] = sum(r["ran"] for r in matched) / max(len(matched), 1)
    near = [r for r in rows if r["near"]]
    out["near a lesson: model ran"] = sum(r["ran"] for r in near) / max(len(near), 1)
    far = [r for r in rows if not r["near"]]
    out["unrelated: model ran"] = sum(r["ran"] for r in far) / max(len(far), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lessons", type=int, default=100_000)
    parser.add_argument("--turns", type=int, default=600, help="measured turns (held-out sentences)")
    parser.add_argument("--train", type=int, default=3000, help="turns the map learns from first")
    parser.add_argument("--cache", type=Path, default=HERE / ".cache")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "recall-stages.json")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    result["summary"] = summary(result)
    args.out.write_text(json.dumps(result, indent=1))
    print(
        f"gate of {args.lessons} lessons built in {result['gate_build_s']:.1f} s; map learned from "
        f"{result['map_pairs']} pairs; threshold now {result['threshold']:.3f}"
    )
    for name, value in result["summary"].items():
        if isinstance(value, dict):
            print(
                f"{name:>16}: n={value['turns']:4}  static {value['static_ms_p50']:.3f} ms  gate "
                f"{value['gate_ms_p50']:.3f} ms  model ran {value['model_ran']:.0%}  cascade mean "
                f"{value['cascade_ms_mean']:.2f} max {value['cascade_ms_max']:.2f} ms  (model on the "
                f"whole turn: {value['whole_turn_model_ms_mean']:.2f} ms)"
            )
        else:
            print(f"{name}: {value:.1%}")


if __name__ == "__main__":
    main()
