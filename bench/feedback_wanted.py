"""Does asking for feedback where it teaches the most beat asking at random? A simulation over the
learning set (bench/learning_set.py) through `loopwise serve` with the bundled embedding model.

    python bench/feedback_wanted.py [--turns 1500] [--seed 7] [--share 0.3]

The provider is an oracle on 127.0.0.1: it answers a question right when a correction for it
is in the prompt, and follows an injected correction 70% of the time (else it answers as if it
had none); the unrelated questions (bench/learning_set.UNRELATED) it always answers right.
Simulated users ask the made-up-fact questions (the question or one of its paraphrases; `--share`
of the turns, 30% by default) and the unrelated ones, one turn per session, 40 users. Each turn may draw spontaneous feedback (5%: a
thumbs-down with the correction on a wrong answer, a thumbs-up on a right one), in both arms.

- `reasons`: the shipped default policy's `feedback_wanted` (contradicts-correction,
  ambiguous-match, new-lesson; its budget); a user asked always answers.
- `random`: no `feedback_wanted`; the same number of asks, on turns drawn at random.

A lesson decision is what a feedback did to lessons: it made or joined one (the answer says so:
`lesson_id`), or it is a verdict on a turn with a lesson injected that had drawn fewer than five
verdicts so far (the evidence that keeps or retires it; one more verdict on a lesson judged five
times decides little, so it does not count here, stricter than the report, which counts every
verdict). Reported: decisions per feedback request,
per arm. Writes docs/feedback-wanted.{json,md} (another --share: docs/feedback-wanted-SHARE.{json,md}).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import free_port, start
from bench.learning_set import ITEMS, UNRELATED

HERE = Path(__file__).resolve().parent
WRONG = "I believe it is 30 days, at the main office."
PROVEN = 5  # verdicts after which one more on a lesson decides little (the policy's unproven_below)
FOLLOWS = 0.7


def oracle() -> Any:
    """An ASGI provider: right when the prompt holds the question's correction (70% of the
    time: a deterministic draw per prompt), right on the unrelated questions, wrong else."""
    known = {q: a for q, a in UNRELATED}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        messages = json.loads(body)["messages"]
        question = messages[-1]["content"]
        context = "\n".join(str(m.get("content")) for m in messages[:-1])
        answer = known.get(question, WRONG)
        for _, asked, correction, _, phrasings in ITEMS:
            if correction in context and question in (asked, *phrasings):
                draw = int(hashlib.sha256(context.encode() + question.encode()).hexdigest()[:8], 16) / 2**32
                answer = correction if draw < FOLLOWS else WRONG
            elif correction in context and answer == WRONG:
                answer = correction if random.random() < FOLLOWS else WRONG  # a wrong lesson, followed
        data = {
            "id": "chatcmpl-oracle",
            "object": "chat.completion",
            "created": 1,
            "model": "oracle",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }
        raw = json.dumps(data).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": raw})

    return app


def turns(count: int, rng: random.Random, share: float) -> list[tuple[str, str | None, str | None]]:
    """(question, the fragment a right answer has, its correction); None for unrelated ones.
    `share`: how many turns ask a made-up fact (the rest ask what the model knows)."""
    out: list[tuple[str, str | None, str | None]] = []
    for _ in range(count):
        if rng.random() < share:
            _, asked, correction, must, phrasings = rng.choice(ITEMS)
            out.append((rng.choice((asked, *phrasings)), must, correction))
        else:
            question, _ = rng.choice(UNRELATED)
            out.append((question, None, None))
    return out


def run_arm(
    base: str, plan: list[tuple[str, str | None, str | None]], ask_at: set[int] | None, seed: int
) -> dict[str, Any]:
    """Play the turns; `ask_at`: the turns to ask at random (None: ask where the header says)."""
    rng = random.Random(seed)
    http = httpx.Client(base_url=base, timeout=60)
    asked = decisions = spontaneous = 0
    judged: Counter[str] = Counter()  # verdicts each lesson drew after its injections, so far
    reasons: dict[str, list[int]] = {}
    for n, (question, must, correction) in enumerate(plan):
        headers = {"X-App": "help", "X-Session-Id": f"s-{n}", "X-User-Id": f"u-{n % 40}"}
        body = {"model": "oracle", "messages": [{"role": "user", "content": question}]}
        response = http.post("/v1/chat/completions", json=body, headers=headers)
        response.raise_for_status()
        answer = response.json()["choices"][0]["message"]["content"]
        right = must is None or must.lower() in answer.lower()
        reason = response.headers.get("x-loopwise-feedback-wanted")
        wanted = (ask_at is None and reason is not None) or (ask_at is not None and n in ask_at)
        if not wanted and rng.random() >= 0.05:
            continue
        said: dict[str, Any] = {"interaction_id": response.json()["id"], "user_id": headers["X-User-Id"]}
        said.update({"rating": 1} if right else {"rating": -1, "categories": ["factually_incorrect"]})
        if not right and correction:
            said["correction"] = correction
        posted = http.post("/v1/feedback", json=said)
        posted.raise_for_status()
        injected = [i for i in response.headers["x-loopwise-lessons"].split(",") if i]
        unproven = any(judged[i] < PROVEN for i in injected)
        decided = int(posted.json()["lesson_id"] is not None or unproven)
        for lesson in injected:
            judged[lesson] += 1
        if wanted:
            asked += 1
            decisions += decided
            key = reason or "random"
            reasons.setdefault(key, [0, 0])
            reasons[key][0] += 1
            reasons[key][1] += decided
        else:
            spontaneous += 1
    report = http.get("/v1/report").json()["feedback_wanted"]
    return {
        "asked": asked,
        "decisions": decisions,
        "decisions_per_request": decisions / asked if asked else 0.0,
        "by_reason": {k: {"asked": a, "decisions": d} for k, (a, d) in reasons.items()},
        "spontaneous_feedback": spontaneous,
        "report": report,
    }


def serve(work: Path, upstream: str, policy: dict[str, Any] | None) -> Any:
    config: dict[str, Any] = {
        "model_list": [
            {"model_name": "oracle", "litellm_params": {"model": "openai/oracle", "api_base": upstream}}
        ],
        "data_dir": str(work / "data"),
        "log_level": "warning",
    }
    if policy is not None:
        (work / "policies").mkdir(parents=True)
        (work / "policies" / "p.yaml").write_text(yaml.safe_dump({"policies": [policy]}))
        config["policies_dir"] = str(work / "policies")
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    loopwise = str(Path(sys.executable).parent / "loopwise")
    command = [loopwise, "serve", "--config", str(work / "config.yaml"), "--port", str(port)]
    return start("loopwise", command, "/readyz", port, None, {}, work / "proxy.log")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--share", type=float, default=0.3, help="turns that ask a made-up fact")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs")
    args = parser.parse_args()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(oracle(), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    upstream = f"http://127.0.0.1:{port}/v1"
    shipped = yaml.safe_load((HERE.parent / "policies" / "shipped" / "default.yaml").read_text())["policies"][
        0
    ]
    shipped["recall"]["timeout_ms"] = 5000  # the decision, not the machine's load, is measured here
    plan = turns(args.turns, random.Random(args.seed), args.share)
    results: dict[str, Any] = {"turns": args.turns, "seed": args.seed, "share": args.share}
    work = Path(tempfile.mkdtemp(prefix="loopwise-asking-"))
    proxy = serve(work / "reasons", upstream, shipped)
    try:
        results["reasons"] = run_arm(proxy.base, plan, None, args.seed)
    finally:
        proxy.stop()
    plain = {k: v for k, v in shipped.items() if k != "feedback_wanted"}
    asks = set(random.Random(args.seed + 1).sample(range(args.turns), results["reasons"]["asked"]))
    proxy = serve(work / "random", upstream, plain)
    try:
        results["random"] = run_arm(proxy.base, plan, asks, args.seed)
    finally:
        proxy.stop()
        server.should_exit = True
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"feedback-wanted-{args.share:g}" if args.share != 0.3 else "feedback-wanted"
    (args.out / f"{name}.json").write_text(json.dumps(results, indent=1))
    r, q = results["reasons"], results["random"]
    lines = [
        "# Feedback wanted: lesson decisions per feedback request",
        "",
        f"`python bench/feedback_wanted.py --turns {args.turns} --seed {args.seed} --share {args.share}`: "
        f"{args.share:.0%} of turns ask a made-up fact; the oracle provider and "
        "simulated users described in the script's docstring; the shipped default policy.",
        "",
        "| arm | requests | lesson decisions | per request |",
        "| --- | --- | --- | --- |",
        f"| reasons (X-Loopwise-Feedback-Wanted) | {r['asked']} | {r['decisions']} | {r['decisions_per_request']:.2f} |",
        f"| random (same number of asks) | {q['asked']} | {q['decisions']} | {q['decisions_per_request']:.2f} |",
        "",
        "By reason:",
        "",
        *(
            f"- `{k}`: {v['decisions']} decisions from {v['asked']} requests"
            for k, v in r["by_reason"].items()
        ),
        "",
    ]
    (args.out / f"{name}.md").write_text("\n".join(lines))
    print(
        f"reasons: {r['decisions_per_request']:.2f} decisions a request ({r['asked']} asked); "
        f"random: {q['decisions_per_request']:.2f} ({q['asked']} asked)"
    )


if __name__ == "__main__":
    main()
