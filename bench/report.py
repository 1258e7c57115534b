"""docs/benchmarks.md and its chart, from the JSON that bench/overhead.py writes.

python bench/report.py docs/benchmarks.json   # re-render without re-running
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

CHUNKS = 22


def _chart(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = [t for t in results["targets"] if t != "direct"]
    conns = sorted(results["settings"]["connections"])
    top = conns[len(conns) // 2]  # the middle load: at the highest, recall times out and is skipped
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.38
    for offset, mode in ((-width / 2, "json"), (width / 2, "stream")):
        xs = [i + offset for i in range(len(targets))]
        rps = [results["targets"][t][f"{mode}_c{top}"]["rps"] for t in targets]
        cpu = [results["targets"][t][f"{mode}_c{top}"]["cpu_ms_per_request"] for t in targets]
        left.bar(xs, rps, width, label=mode)
        right.bar(xs, cpu, width, label=mode)
    for axis, title in ((left, f"requests/s on one core (c={top})"), (right, "proxy CPU ms per request")):
        axis.set_xticks(range(len(targets)), targets, rotation=20)
        axis.set_title(title)
        axis.legend()
    right.set_yscale("log")
    fig.tight_layout()
    fig.savefig(out / "benchmarks.png", dpi=110)


TRAFFIC = {
    "short": "10-16-token questions, half of them paraphrasing a stored lesson.",
    "mix": "user turns of 8-300 words (half over 40), one in five a paraphrase of a taught question "
    "alone or among context sentences (`bench/questions.py`); first 30 s of turns made of the other "
    "half of its sentences, unmeasured, for the cheap stage to learn from.",
}


def _outcomes(results: dict[str, Any]) -> list[str]:
    on = results["targets"].get("loopwise-100k", {})
    if not on.get("points"):
        return []
    lines = [
        "## Recall outcomes per load point (recall on, 100k lessons; from the trail)",
        "",
        _row(
            [
                "point",
                "outcomes (status/stage)",
                "near a lesson",
                "got its lesson",
                "median recall ms by stage",
            ]
        ),
        _row(["---"] * 5),
    ]
    for name, point in sorted(on["points"].items()):
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(point["outcomes"].items()))
        got = f"{point['near_got_it'] / point['near']:.0%}" if point["near"] else "-"
        stages = ", ".join(f"{k} {v:.1f}" for k, v in sorted(point["ms_by_stage"].items()))
        lines.append(_row([name[6:], outcomes, point["near"], got, stages]))
    return [*lines, ""]


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _targets_check(results: dict[str, Any]) -> list[str]:
    t = results["targets"]
    top = max(results["settings"]["connections"])
    lines = [_row(["target", "measured", "goal", "met"]), _row(["---"] * 4)]

    def check(name: str, value: float, goal: float, unit: str, higher: bool = False) -> None:
        met = value >= goal if higher else value <= goal
        sign = ">=" if higher else "<="
        lines.append(
            _row([name, f"{value:.3g} {unit}", f"{sign} {goal:g} {unit}", "yes" if met else "**no**"])
        )

    off = t.get("loopwise-off")
    lite = t.get("litellm-proxy")
    on = t.get("loopwise-100k")
    if off:
        check("recall off: CPU per JSON request", off["json_c8"]["cpu_ms_per_request"], 1.0, "ms")
        per_chunk = (off["stream_c8"]["cpu_ms_per_request"] - off["json_c8"]["cpu_ms_per_request"]) / CHUNKS
        check("recall off: CPU per relayed stream chunk", per_chunk * 1000, 20, "us")
        if lite:
            for mode in ("json", "stream"):
                ratio = off[f"{mode}_c{top}"]["rps"] / lite[f"{mode}_c{top}"]["rps"]
                check(f"recall off: req/s vs LiteLLM proxy ({mode}, c={top})", ratio, 10, "x", higher=True)
        check("time to ready (recall off)", off["ready_s"], 3, "s")
        check("idle RSS, embedding model loaded", off["idle_rss_mb"], 200, "MB")
    if on and off:
        for mode in ("json", "stream"):
            added = on[f"{mode}_c8"]["cpu_ms_per_request"] - off[f"{mode}_c8"]["cpu_ms_per_request"]
            check(f"recall on, 100k: CPU recall adds per request ({mode}, c=8)", added, 2, "ms")
    if on:
        if lite:
            for mode in ("json", "stream"):
                ratio = on[f"{mode}_c8"]["rps"] / lite[f"{mode}_c8"]["rps"]
                check(f"recall on, 100k: req/s vs LiteLLM proxy ({mode}, c=8)", ratio, 5, "x", higher=True)
        for name, point in sorted(on.get("points", {}).items()):
            if name.endswith(f"_c{top}") and point["near"]:
                got = point["near_got_it"] / point["near"]
                check(f"recall on, 100k: near a lesson, got it ({name[6:]})", got * 100, 95, "%", higher=True)
                timeouts = sum(v for k, v in point["outcomes"].items() if k.startswith("timeout"))
                check(f"recall on, 100k: recall timeouts ({name[6:]})", timeouts, 0, "")
        added = statistics.median(on["ttft_ms"]) - statistics.median(t["direct"]["ttft_ms"])
        budget = statistics.median(on["recall_ms"]) + 1
        lines.append(
            _row(
                ["recall on, 100k: added time to first token", f"{added:.2f} ms",
                 f"<= recall p50 + 1 = {budget:.2f} ms", "yes" if added <= budget else "**no**"]
            )
        )  # fmt: skip
    big = results["recall"].get("1000000")
    if big:
        check("recall alone at 1M lessons, p99", big["recall_ms"]["p99"], 10, "ms")
    return lines


def render(results: dict[str, Any]) -> str:
    t = results["targets"]
    conns = results["settings"]["connections"]
    m = results["machine"]
    out = [
        "# Benchmarks: the proxy's own cost",
        "",
        "Generated by `python bench/overhead.py` (numbers below are from one run; re-render with",
        "`python bench/report.py docs/benchmarks.json`). Every target sits in front of the same fake",
        f"OpenAI provider (`bench/fake_upstream.py`, {CHUNKS}-chunk streams). The fake provider and wrk are",
        "pinned to core 0, the proxy under test to core 1; CPU is the proxy process tree's user+system",
        "time divided by requests served. Request bodies rotate through 4000 distinct ones, so the",
        "embedding cache never hides recall's cost: " + TRAFFIC[results["settings"].get("traffic", "short")],
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Linux {m['kernel']}, "
        f"Python {results['python']}.",
        "",
        "![requests per second and CPU per request](benchmarks.png)",
        "",
        "## Targets",
        "",
        *_targets_check(results),
        "",
        "## Load",
        "",
        _row(
            [
                "target",
                "mode",
                "conns",
                "req/s",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "added p50 ms",
                "CPU ms/req",
                "errors",
            ]
        ),
        _row(["---"] * 10),
    ]
    for name, data in t.items():
        for mode in ("json", "stream"):
            for c in conns:
                point = data[f"{mode}_c{c}"]
                base = t["direct"][f"{mode}_c{c}"]
                out.append(
                    _row(
                        [
                            name, mode, c, f"{point['rps']:.0f}", f"{point['p50_us'] / 1000:.2f}",
                            f"{point['p90_us'] / 1000:.2f}", f"{point['p99_us'] / 1000:.2f}",
                            "-" if name == "direct" else f"{(point['p50_us'] - base['p50_us']) / 1000:+.2f}",
                            f"{point['cpu_ms_per_request']:.3f}", point["errors"] + point["non2xx"],
                        ]
                    )
                )  # fmt: skip
    out += [
        "",
        "## Start, memory, first token",
        "",
        _row(
            [
                "target",
                "ready s",
                "idle RSS MB",
                "peak RSS MB",
                "TTFT p50 ms",
                "added TTFT ms",
                "recall p50 ms",
                "recall outcomes, whole run",
            ]
        ),
        _row(["---"] * 8),
    ]
    direct_ttft = statistics.median(t["direct"]["ttft_ms"])
    for name, data in t.items():
        ttft = statistics.median(data["ttft_ms"])
        recall = f"{statistics.median(data['recall_ms']):.2f}" if data.get("recall_ms") else "-"
        out.append(
            _row(
                [
                    name, "-" if name == "direct" else f"{data['ready_s']:.2f}", f"{data['idle_rss_mb']:.0f}",
                    f"{data['peak_rss_mb']:.0f}", f"{ttft:.2f}",
                    "-" if name == "direct" else f"{ttft - direct_ttft:+.2f}", recall,
                    ", ".join(f"{k} {v}" for k, v in sorted(data.get("recall_statuses", {}).items())) or "-",
                ]
            )
        )  # fmt: skip
    out += [
        "",
        *_outcomes(results),
        "## Recall alone (embed + search with the app scope filter, Qdrant Edge, HNSW built)",
        "",
        _row(
            [
                "lessons",
                "recall p50 ms",
                "p90",
                "p99",
                "embed p50",
                "search p50",
                "search p99",
                "HNSW build s",
            ]
        ),
        _row(["---"] * 8),
    ]
    for size, r in results["recall"].items():
        out.append(
            _row(
                [
                    f"{int(size):,}", f"{r['recall_ms']['p50']:.2f}", f"{r['recall_ms']['p90']:.2f}",
                    f"{r['recall_ms']['p99']:.2f}", f"{r['embed_ms']['p50']:.2f}",
                    f"{r['search_ms']['p50']:.2f}", f"{r['search_ms']['p99']:.2f}",
                    f"{r['built']['optimize_s']:.0f}",
                ]
            )
        )  # fmt: skip
    notes = results.get("notes")
    if notes:
        out += ["", "## What the numbers show", "", notes]
    return "\n".join(out) + "\n"


def write_report(results: dict[str, Any], out: Path) -> None:
    _chart(results, out)
    notes = out / "benchmarks-notes.md"
    if notes.exists():
        results = {**results, "notes": notes.read_text().strip()}
    (out / "benchmarks.md").write_text(render(results))


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/benchmarks.json")
    write_report(json.loads(source.read_text()), source.parent)
