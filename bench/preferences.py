"""Do personal preferences reach the user who gave them, and only that user? A real LLM behind
the proxy.

    python bench/preferences.py        # starts the local LLM (bench/local_llm.py) and the proxy

Three simulated users talk to `loopwise serve` (the shipped default policy, with its
`preferences` injector) through the official `openai` SDK, on the same app:
- `brief` asks one question and says the answer was too long (category `too_long`);
- `formal` asks one question and comments "please answer more formally";
- `other` gives no feedback.
Then each asks the same unrelated questions (none is the one they gave feedback on). Before any
feedback the answers are the baseline (temperature 0: every user gets the same answer then).

Length: median words of the answers. Formality, a stated rule (`learning.preferences.register_of`):
an answer is formal when it has no contraction (don't, it's), no casual word (hey, gonna,
awesome, ...) and no exclamation mark. Writes docs/preferences.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import yaml
from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import local_llm
from bench.harness import free_port, start
from proxy.learning.preferences import register_of

HERE = Path(__file__).resolve().parent
TEACHING = "Can you explain what a compiler does?"
QUESTIONS = [
    "How does a refrigerator keep food cold?",
    "Hey, what's a good way to start learning to cook?",
    "Why do leaves change colour in autumn?",
    "What should I look for when buying a used bicycle?",
    "How do vaccines help the body fight disease?",
    "Any tips for staying focused while working from home?",
    "How does a rainbow form?",
    "What's the difference between weather and climate?",
    "How can I make my houseplants grow better?",
    "Why is the sky blue?",
    "What are some fun things to do on a rainy weekend?",
    "How do airplanes stay in the air?",
]
TEACH = {
    "brief": {"categories": ["too_long"]},
    "formal": {"comment": "Please answer more formally, this was too casual."},
}


class User:
    def __init__(self, base: str, name: str, max_tokens: int) -> None:
        self.client = OpenAI(base_url=f"{base}/v1", api_key="unused", timeout=300, max_retries=0)
        self.http = httpx.Client(base_url=base, timeout=60)
        self.name = name
        self.max_tokens = max_tokens
        self.turns = 0

    def ask(self, question: str) -> tuple[str, str]:
        """(answer, interaction id)"""
        self.turns += 1
        completion = self.client.chat.completions.create(
            model="qwen",
            messages=[{"role": "user", "content": question}],
            temperature=0,
            max_tokens=self.max_tokens,
            extra_headers={
                "X-App": "assistant",
                "X-User-Id": self.name,
                "X-Session-Id": f"{self.name}-{self.turns}",
            },
        )
        return completion.choices[0].message.content or "", completion.id

    def feedback(self, interaction: str, said: dict[str, Any]) -> None:
        self.http.post("/v1/feedback", json={"interaction_id": interaction, **said}).raise_for_status()


def words(text: str) -> int:
    return len(text.split())


def summary(answers: list[str]) -> dict[str, Any]:
    return {
        "median_words": statistics.median(words(a) for a in answers),
        "formal_share": sum(register_of(a) == "formal" for a in answers) / len(answers),
        "answers": answers,
    }


def run(base: str, max_tokens: int) -> dict[str, Any]:
    users = {name: User(base, name, max_tokens) for name in ("brief", "formal", "other")}
    baseline = summary([users["other"].ask(q)[0] for q in QUESTIONS])
    for name, said in TEACH.items():
        _, interaction = users[name].ask(TEACHING)
        users[name].feedback(interaction, said)
    after = {name: summary([user.ask(q)[0] for q in QUESTIONS]) for name, user in users.items()}
    profiles = {
        name: user.http.get(f"/v1/users/{name}/preferences").json()["data"] for name, user in users.items()
    }
    base_words = baseline["median_words"]
    return {
        "baseline": baseline,
        "after": after,
        "profiles": {n: [(p["dimension"], p["value"]) for p in rows] for n, rows in profiles.items()},
        "brief_shorter_by": 1 - after["brief"]["median_words"] / base_words,
        "other_changed_by": after["other"]["median_words"] / base_words - 1,
        "formal_share_before": baseline["formal_share"],
        "formal_share_after": after["formal"]["formal_share"],
    }


def write_report(results: dict[str, Any], out: Path) -> None:
    (out / "preferences.json").write_text(json.dumps(results, indent=1))
    b, a = results["baseline"], results["after"]
    lines = [
        "# Personal preferences with a real model",
        "",
        f"`python bench/preferences.py`; {results['model']}, temperature 0, max_tokens {results['max_tokens']}, "
        f"{len(QUESTIONS)} unrelated questions per user, asked after one piece of feedback each.",
        "",
        "| user | feedback given | profile | median words | formal answers |",
        "| --- | --- | --- | --- | --- |",
        f"| (baseline, before any feedback) | | | {b['median_words']:g} | {b['formal_share']:.0%} |",
    ]
    for name in ("brief", "formal", "other"):
        said = json.dumps(TEACH.get(name, {})) if name in TEACH else "none"
        profile = ", ".join(f"{d}: {v}" for d, v in results["profiles"][name]) or "empty"
        row = a[name]
        lines.append(
            f"| {name} | `{said}` | {profile} | {row['median_words']:g} | {row['formal_share']:.0%} |"
        )
    lines += [
        "",
        f"- `brief`'s answers are {results['brief_shorter_by']:.0%} shorter than the baseline (median words; goal 40% or more).",
        f"- `other`'s answers changed by {results['other_changed_by']:+.0%} (goal: within 10%).",
        f"- `formal`: {results['formal_share_after']:.0%} of answers formal, against {results['formal_share_before']:.0%} "
        "before (rule: no contraction, no casual word, no exclamation mark).",
        "",
    ]
    (out / "preferences.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--llm-url", help="an already running OpenAI-compatible server (default: start one)")
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs")
    args = parser.parse_args()
    llm = None if args.llm_url else local_llm.start(free_port())
    base_url = args.llm_url or (llm.base_url if llm else "")
    work = Path(tempfile.mkdtemp(prefix="loopwise-preferences-"))
    port = free_port()
    config = {
        "model_list": [
            {"model_name": "qwen", "litellm_params": {"model": "openai/qwen", "api_base": base_url}}
        ],
        "data_dir": str(work / "data"),
        "log_level": "warning",
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    loopwise = str(Path(sys.executable).parent / "loopwise")
    command = [loopwise, "serve", "--config", str(work / "config.yaml"), "--port", str(port)]
    proxy = start("loopwise", command, "/readyz", port, None, {}, work / "proxy.log")
    try:
        results = run(proxy.base, args.max_tokens)
    finally:
        proxy.stop()
        if llm:
            llm.stop()
    results.update(model="qwen2.5-coder-0.5b-instruct q4_k_m", max_tokens=args.max_tokens)
    args.out.mkdir(parents=True, exist_ok=True)
    write_report(results, args.out)
    print(
        f"brief: {results['brief_shorter_by']:.0%} shorter; other: {results['other_changed_by']:+.0%}; "
        f"formal: {results['formal_share_before']:.0%} -> {results['formal_share_after']:.0%}"
    )
    print(f"wrote {args.out / 'preferences.md'}")


if __name__ == "__main__":
    main()
