"""Recall's cascade stage by stage, in-process, on the production-like mix (bench/questions.py):
what each stage costs in CPU by turn length, how many turns each stage ends, and what the model
alone on the whole turn (recall before the cascade) cost on the same turns.

    python bench/recall_stages.py [--lessons 100000] [--turns 600] [--out docs/recall-stages.json]

The gate holds the 10 taught lessons plus filler lessons ("synthetic question N"), as the
load benchmark's index does. Times are thread CPU time (time.thread_time), one turn at a time.
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
    lessons = [(f"real{i}", "bench", "", q) for i, (q, _) in enumerate(questions.LESSONS)]
    lessons += [
        (f"fill{i}", "bench", "", f"synthetic question {i}") for i in range(args.lessons - len(lessons))
    ]
    began = time.perf_counter()
    gate.install(gate.build(lessons))
    build_s = time.perf_counter() - began
    threshold = RecallConfig().gate_score
    taught = [model(q) for q, _ in questions.LESSONS]
    texts = [
        orjson.loads(b)["messages"][0]["content"] for b in questions.mix_bodies(args.turns, "m", False, "s")
    ]
    rows = []
    for text in texts:
        windows, windows_ms = cpu_ms(lambda t=text: gate.windows(t))
        best, gate_ms = cpu_ms(lambda w=windows: gate.best("bench", "", w.vectors))
        passed = best is not None and best[0] >= threshold
        model_ms = cpu_ms(lambda w=windows, b=best: model(w.texts[b[1]]))[1] if passed and best else 0.0
        whole, whole_ms = cpu_ms(lambda t=text: model(t[:4096]))
        best_window = model(windows.texts[best[1]]) if best else whole
        found = max(sum(a * b for a, b in zip(best_window, v, strict=True)) for v in taught)
        rows.append(
            {
                "words": len(text.split()),
                "near": "n" in text.rsplit("#", 1)[-1],
                "windows": len(windows.texts),
                "static_ms": windows_ms,
                "gate_ms": gate_ms,
                "model_ms": model_ms,
                "cascade_ms": windows_ms + gate_ms + model_ms,
                "whole_turn_model_ms": whole_ms,
                "passed": passed,
                "gate_best": best[0] if best else None,
                "model_best": found,  # the model's best score to a taught lesson, on that window
            }
        )
    embedder.close()
    return {"lessons": args.lessons, "gate_build_s": build_s, "gate_score": threshold, "rows": rows}


def summary(result: dict[str, Any]) -> dict[str, Any]:
    rows = result["rows"]

    def stats(part: list[dict[str, Any]]) -> dict[str, float]:
        def med(key: str) -> float:
            return statistics.median(r[key] for r in part)

        return {
            "turns": len(part),
            "static_ms_p50": med("static_ms"),
            "gate_ms_p50": med("gate_ms"),
            "model_ran": sum(r["passed"] for r in part) / len(part),
            "cascade_ms_mean": statistics.fmean(r["cascade_ms"] for r in part),
            "cascade_ms_max": max(r["cascade_ms"] for r in part),
            "whole_turn_model_ms_mean": statistics.fmean(r["whole_turn_model_ms"] for r in part),
        }

    out = {"all": stats(rows)}
    for low, high in BUCKETS:
        part = [r for r in rows if low <= r["words"] <= high]
        if part:
            out[f"{low}-{high} words"] = stats(part)
    for gate in (0.4, 0.45, 0.5, 0.55, 0.6):
        matched = [r for r in rows if r["model_best"] >= RecallConfig().min_score]
        out[f"gate {gate}: model would match, kept"] = sum(
            (r["gate_best"] or 0) >= gate for r in matched
        ) / max(len(matched), 1)
        out[f"gate {gate}: model runs"] = sum((r["gate_best"] or 0) >= gate for r in rows) / len(rows)
    near = [r for r in rows if r["near"]]
    out["near a lesson: model ran"] = sum(r["passed"] for r in near) / max(len(near), 1)
    far = [r for r in rows if not r["near"]]
    out["unrelated: model ran"] = sum(r["passed"] for r in far) / max(len(far), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lessons", type=int, default=100_000)
    parser.add_argument("--turns", type=int, default=600)
    parser.add_argument("--cache", type=Path, default=HERE / ".cache")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "recall-stages.json")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    result["summary"] = summary(result)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"gate of {args.lessons} lessons built in {result['gate_build_s']:.1f} s")
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
