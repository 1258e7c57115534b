"""Does the loop fix what users corrected, without hurting the rest? A real LLM behind the proxy.

    python bench/learning.py            # starts the local LLM (bench/local_llm.py) and the proxy

Simulated users talk to `loopwise serve` through the official `openai` SDK. For each of the
questions in bench/learning_set.py the model gets wrong, a user asks it, sends negative feedback
with a category and a correction, and later users ask two paraphrases. The same for the other
kinds of lessons in bench/learning_kinds.py (a format, a house style, incomplete answers,
procedures, and feedback with a category but no correction), each with its own test of a right
answer. Unrelated questions are
asked before any teaching and after all of it. The same run goes through a second app whose
policy has injection off. Fix rate: paraphrases answered with the corrected fact. Harm: unrelated
answers that were right before and are wrong after, or that quote a lesson. Writes
docs/learning.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import local_llm
from bench.harness import free_port, start
from bench.learning_kinds import KINDS
from bench.learning_set import ITEMS, UNRELATED

HERE = Path(__file__).resolve().parent
MODES = {"injection on": "learn", "injection off": "plain"}
POLICIES = {
    "policies": [
        {"name": "plain", "match": {"apps": ["plain"]}, "recall": {"enabled": False}},
        # review: auto: this measures what a model does with corrections, not what the screen holds
        # (2 of its 42 corrections, a Wi-Fi password and a tone instruction, would wait for review)
        {
            "name": "learn",
            "match": {},
            "injectors": ["guidance", {"corrections": {"max_lessons": 3}}],
            "learn": {"review": "auto"},
            # what the model does with lessons, not how fast: a loaded machine must not time recall out
            "recall": {"timeout_ms": 10_000},
        },
    ]
}


def has(answer: str, fragment: str) -> bool:
    return fragment.lower() in answer.lower()


class User:
    def __init__(self, base: str, app: str, max_tokens: int) -> None:
        self.client = OpenAI(base_url=f"{base}/v1", api_key="unused", timeout=120, max_retries=0)
        self.http = httpx.Client(base_url=base, timeout=60)
        self.app = app
        self.max_tokens = max_tokens
        self.sessions = 0

    def ask(self, question: str) -> tuple[str, str, str]:
        """(answer, interaction id, lessons injected)"""
        self.sessions += 1
        raw = self.client.chat.completions.with_raw_response.create(
            model="qwen",
            messages=[{"role": "user", "content": question}],
            temperature=0,
            max_tokens=self.max_tokens,
            extra_headers={"X-App": self.app, "X-Session-Id": f"{self.app}-{self.sessions}"},
        )
        completion = raw.parse()
        return completion.choices[0].message.content or "", completion.id, raw.headers["x-loopwise-lessons"]

    def correct(
        self, interaction: str, category: str, correction: str | None, comment: str | None = None
    ) -> None:
        body: dict[str, Any] = {"interaction_id": interaction, "rating": -1, "categories": [category]}
        if correction:
            body["correction"] = correction
        if comment:
            body["comment"] = comment
        self.http.post("/v1/feedback", json=body).raise_for_status()


def run_mode(user: User) -> dict[str, Any]:
    fragments = [must for _, _, _, must, _ in ITEMS if len(must) >= 4 and not must.isdigit()]
    before = [user.ask(q) for q, _ in UNRELATED]
    taught = []
    for category, question, correction, must, _ in ITEMS:
        answer, interaction, _ = user.ask(question)
        taught.append(has(answer, must))
        user.correct(interaction, category, correction)
    for item in KINDS:
        _, interaction, _ = user.ask(item.question)
        user.correct(interaction, item.category, item.correction, item.comment)
    time.sleep(1.5)  # the index sync is immediate, this only lets the trail writer settle
    paraphrases = []
    for _, _, _, must, asked in ITEMS:
        for paraphrase in asked:
            answer, _, lessons = user.ask(paraphrase)
            paraphrases.append(
                {"question": paraphrase, "fixed": has(answer, must), "lessons": lessons, "answer": answer}
            )
    kinds = []
    for item in KINDS:
        for paraphrase in item.paraphrases:
            answer, _, lessons = user.ask(paraphrase)
            kinds.append(
                {
                    "kind": item.kind,
                    "question": paraphrase,
                    "fixed": item.check(answer),
                    "lessons": lessons,
                    "words": len(answer.split()),
                    "answer": answer,
                }
            )
    after = []
    for (question, must), (old, _, _) in zip(UNRELATED, before, strict=True):
        answer, _, lessons = user.ask(question)
        copied = [f for f in fragments if has(answer, f) and not has(old, f)]
        worse = has(old, must) and not has(answer, must)
        after.append(
            {
                "question": question,
                "worse": worse,
                "copied": copied,
                "lessons": lessons,
                "before": old,
                "after": answer,
            }
        )
    return {
        "right_before_teaching": sum(taught) / len(taught),
        "fix_rate": sum(p["fixed"] for p in paraphrases) / len(paraphrases),
        "paraphrases_injected": sum(bool(p["lessons"]) for p in paraphrases) / len(paraphrases),
        "harm_rate": sum(bool(a["worse"] or a["copied"]) for a in after) / len(after),
        "unrelated_injected": sum(bool(a["lessons"]) for a in after) / len(after),
        "unrelated_right_before": sum(has(a, m) for (_, m), (a, _, _) in zip(UNRELATED, before, strict=True))
        / len(UNRELATED),
        "paraphrases": paraphrases,
        "unrelated": after,
        "kinds": {kind: by_kind(kinds, kind) for kind in dict.fromkeys(i.kind for i in KINDS)},
    }


def by_kind(rows: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    mine = [r for r in rows if r["kind"] == kind]
    return {
        "fix_rate": sum(r["fixed"] for r in mine) / len(mine),
        "injected": sum(bool(r["lessons"]) for r in mine) / len(mine),
        "median_words": statistics.median(r["words"] for r in mine),
        "paraphrases": mine,
    }


def write_report(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["modes"])
    fig, axis = plt.subplots(figsize=(7, 4))
    width = 0.38
    fix = [results["modes"][n]["fix_rate"] for n in names]
    harm = [results["modes"][n]["harm_rate"] for n in names]
    axis.bar([i - width / 2 for i in range(len(names))], fix, width, label="fix rate (paraphrases)")
    axis.bar([i + width / 2 for i in range(len(names))], harm, width, label="harm rate (unrelated)")
    axis.set_xticks(range(len(names)), names)
    axis.set_ylim(0, 1)
    axis.axhline(0.9, color="grey", lw=0.8)
    axis.legend()
    axis.set_title(f"{len(ITEMS)} corrected questions, {results['model']}")
    fig.tight_layout()
    fig.savefig(out / "learning.png", dpi=110)
    lines = [
        "# Learning benchmark: a real LLM behind the proxy",
        "",
        "Generated by `python bench/learning.py`. Model: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M) on",
        "llama.cpp, temperature 0, max_tokens 64, via `loopwise serve` and the `openai` SDK.",
        f"{len(ITEMS)} questions the model gets wrong (made-up facts and house rules), each corrected once",
        f"by a user, then asked as {2 * len(ITEMS)} paraphrases by other users; {len(UNRELATED)} unrelated",
        "questions asked before and after all teaching.",
        "",
        "![fix and harm rates](learning.png)",
        "",
        "| | right before teaching | fix rate | paraphrases given a lesson | harm rate | unrelated given a lesson |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, m in results["modes"].items():
        lines.append(
            f"| {name} | {m['right_before_teaching']:.0%} | {m['fix_rate']:.1%} | {m['paraphrases_injected']:.1%} "
            f"| {m['harm_rate']:.1%} | {m['unrelated_injected']:.1%} |"
        )
    on, off = results["modes"]["injection on"]["kinds"], results["modes"]["injection off"]["kinds"]
    lines += [
        "",
        f"Lessons of the other kinds ({len(KINDS)} taught, `bench/learning_kinds.py`), two paraphrases each:",
        "",
        "| kind | a right answer | fixed, injection on | fixed, injection off | given a lesson | median words on / off |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind, m in on.items():
        rules = ", ".join(dict.fromkeys(i.rule for i in KINDS if i.kind == kind))
        lines.append(
            f"| {kind} | {rules} | {m['fix_rate']:.0%} | {off[kind]['fix_rate']:.0%} | {m['injected']:.0%} "
            f"| {m['median_words']:g} / {off[kind]['median_words']:g} |"
        )
    misses = [p for p in results["modes"]["injection on"]["paraphrases"] if not p["fixed"]]
    misses += [p for m in on.values() for p in m["paraphrases"] if not p["fixed"]]
    if misses:
        lines += ["", "Paraphrases not fixed with injection on:", ""]
        lines += [
            f"- {p['question']} (lessons: {p['lessons'] or 'none'}): {p['answer'][:120]!r}" for p in misses
        ]
    harmed = [a for a in results["modes"]["injection on"]["unrelated"] if a["worse"] or a["copied"]]
    if harmed:
        lines += ["", "Unrelated answers harmed with injection on:", ""]
        lines += [f"- {a['question']}: {a['before'][:80]!r} -> {a['after'][:80]!r}" for a in harmed]
    notes = out / "learning-notes.md"
    if notes.exists():
        lines += ["", notes.read_text().strip()]
    (out / "learning.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--llm-url", help="an already running OpenAI-compatible server (default: start one)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs")
    parser.add_argument(
        "--few-shot",
        action="store_true",
        help="also show the best lesson as an earlier turn (few_shot injector)",
    )
    args = parser.parse_args()
    if args.few_shot:
        learning = POLICIES["policies"][1]
        learning["injectors"] = [
            "guidance",
            {"few_shot": {"max_examples": 1}},
            {"corrections": {"max_lessons": 3}},
        ]
    llm = None if args.llm_url else local_llm.start(free_port())
    base_url = args.llm_url or (llm.base_url if llm else "")
    work = Path(tempfile.mkdtemp(prefix="loopwise-learning-"))
    (work / "policies").mkdir()
    (work / "policies" / "p.yaml").write_text(yaml.safe_dump(POLICIES))
    port = free_port()
    config = {
        "model_list": [
            {"model_name": "qwen", "litellm_params": {"model": "openai/qwen", "api_base": base_url}}
        ],
        "data_dir": str(work / "data"),
        "policies_dir": str(work / "policies"),
        "log_level": "warning",
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    loopwise = str(Path(sys.executable).parent / "loopwise")
    proxy = start(
        "loopwise",
        [loopwise, "serve", "--config", str(work / "config.yaml"), "--port", str(port)],
        "/readyz",
        port,
        None,
        {},
        work / "proxy.log",
    )
    results: dict[str, Any] = {"model": "qwen2.5-coder-0.5b-instruct q4_k_m", "modes": {}}
    try:
        for name, app in MODES.items():
            began = time.perf_counter()
            results["modes"][name] = run_mode(User(proxy.base, app, args.max_tokens))
            m = results["modes"][name]
            print(
                f"{name}: fix rate {m['fix_rate']:.1%}, harm {m['harm_rate']:.1%}, "
                f"unrelated injected {m['unrelated_injected']:.1%} ({time.perf_counter() - began:.0f} s)",
                flush=True,
            )
    finally:
        proxy.stop()
        if llm:
            llm.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learning.json").write_text(json.dumps(results, indent=1))
    write_report(results, args.out)
    print(f"wrote {args.out / 'learning.md'}")


if __name__ == "__main__":
    main()
