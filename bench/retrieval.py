"""Retrieval quality on CLINC150 through the product: the proxy's embedder, Qdrant Edge index,
recall, injectors and shipped default policy, driven over its own HTTP API.

    python bench/retrieval.py --data ../shared/data/clinc150 [--ks 1,3,5]

For each k, k training queries per intent are taught as lessons (ask, then negative feedback
whose correction names the intent). Then every test query is explained (POST /v1/explain: the
exact request path, without calling a provider): in-scope queries should get a lesson of their
own intent, out-of-scope queries none. Precision is counted two ways: over every injected lesson
(a turn given one right lesson and one wrong counts one of each: the stricter, which judges) and
over the best injected one; recall is the share of in-scope queries given at least one right
lesson. The precision-recall curves come from the product too: the same queries explained under
policies that differ from the shipped one only in min_score and min_margin (one per user role).

`--entities` adds a second app whose lessons differ only in a made-up name
(`bench/entity_set.py`: 144 names, 8 questions each), asked again as repeats with a few words
added and as paraphrases. Writes docs/retrieval.{json,md,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from asgi_lifespan import LifespanManager

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import entity_set
from bench.harness import free_port, start
from bench.retrieval_metrics import curves, score_rule, write_report
from policies import shipped_policies_dir
from proxy.app import create_app
from proxy.chat import recall as recall_module
from proxy.settings import load_settings

HERE = Path(__file__).resolve().parent
APP = "clinc"
ENTITIES = "entities"
OUTCOMES: dict[str, int] = {}  # recall's status and deciding stage, over every explain
BUDGET_MS = 10_000  # recall's time budget here: a loaded machine must not censor what is measured
THRESHOLDS = (0.5, 0.55, 0.58, 0.6, 0.62, 0.64, 0.66, 0.7, 0.75)
MARGINS = (0.08,)  # the shipped margin; the threshold is swept


def role(threshold: float, margin: float) -> str:
    return f"sweep-{threshold:g}-{margin:g}"


def sweep_policies(shipped: dict[str, Any]) -> list[dict[str, Any]]:
    """The shipped policy with another min_score and min_margin, one per user role."""
    return [
        {
            **shipped,
            "name": role(t, m),
            "match": {"user_roles": [role(t, m)]},
            "recall": {**shipped["recall"], "min_score": t, "min_margin": m},
        }
        for t in THRESHOLDS
        for m in MARGINS
    ]


def load(data: Path, limit_intents: int | None) -> dict[str, Any]:
    raw = json.loads((data / "data_full.json").read_text())
    intents = sorted({intent for _, intent in raw["train"]})[:limit_intents]
    keep = set(intents)
    train: dict[str, list[str]] = {i: [] for i in intents}
    for query, intent in raw["train"]:
        if intent in keep:
            train[intent].append(query)
    test = [(q, i) for q, i in raw["test"] if i in keep]
    return {
        "intents": intents,
        "train": train,
        "test": test,
        "oos": [q for q, _ in raw["oos_test"]],
        "val": [(q, i) for q, i in raw["val"] if i in keep],
        "oos_val": [q for q, _ in raw["oos_val"]],
    }


def correction(intent: str) -> str:
    return f"[intent:{intent}] the answer for {intent.replace('_', ' ')}"


def intent_of(text: str) -> str:
    return text.split("]", 1)[0].removeprefix("[intent:")


async def teach(client: httpx.AsyncClient, items: list[tuple[str, str]], app: str = APP) -> None:
    for n, (query, intent) in enumerate(items):
        headers = {"X-App": app, "X-Session-Id": f"teach-{app}-{intent}-{n}"}
        body = {"model": "fake", "messages": [{"role": "user", "content": query}]}
        answer = await client.post("/v1/chat/completions", json=body, headers=headers)
        answer.raise_for_status()
        stored = await client.post(
            "/v1/feedback",
            json={
                "interaction_id": answer.json()["id"],
                "rating": -1,
                "categories": ["factually_incorrect"],
                "correction": correction(intent),
            },
        )
        stored.raise_for_status()


async def explain(client: httpx.AsyncClient, query: str, role: str | None, app: str = APP) -> list[str]:
    """What the injected lessons teach (their intents), best first."""
    headers = {"X-App": app, **({"X-User-Role": role} if role else {})}
    body = {"model": "fake", "messages": [{"role": "user", "content": query}]}
    found = (await client.post("/v1/explain", json=body, headers=headers)).json()
    outcome = f"{found['recall']['status']}/{found['recall']['stage']}"
    OUTCOMES[outcome] = OUTCOMES.get(outcome, 0) + 1
    return [intent_of(x["correction"]) for x in found["lessons"] if x["injected_by"] is not None]


async def evaluate(
    client: httpx.AsyncClient, queries: list[tuple[str, str | None]], app: str = APP, sweep: bool = True
) -> list[dict[str, Any]]:
    out = []
    for query, gold in queries:
        row: dict[str, Any] = {"gold": gold, "injected": await explain(client, query, None, app)}
        if sweep:
            row["sweep"] = {
                role(t, m): await explain(client, query, role(t, m), app) for t in THRESHOLDS for m in MARGINS
            }
        out.append(row)
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data = load(args.data, args.intents)
    work = Path(tempfile.mkdtemp(prefix="loopwise-retrieval-"))
    policies = work / "policies"
    shutil.copytree(shipped_policies_dir(), policies)
    shipped = yaml.safe_load((shipped_policies_dir() / "default.yaml").read_text())["policies"][0]
    shipped["recall"]["timeout_ms"] = BUDGET_MS
    (policies / "default.yaml").write_text(yaml.safe_dump({"policies": [shipped]}))
    (policies / "00-sweep.yaml").write_text(yaml.safe_dump({"policies": sweep_policies(shipped)}))
    if "lexical" in args.ablate:  # measured one at a time: the decision without the words
        recall_module.LEXICAL = 0.0
    port = free_port()
    fake = start(
        "fake",
        [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(port), "--chunks", "3"],
        "/v1/chat/completions",
        port,
        None,
        {},
        work / "fake.log",
    )
    settings = load_settings(
        None,
        data_dir=str(work / "data"),
        policies_dir=str(policies),
        model_list=[
            {
                "model_name": "fake",
                "litellm_params": {"model": "openai/fake", "api_base": f"{fake.base}/v1", "api_key": "k"},
            }
        ],
        embedding={"cache_size": 20000},
    )
    results: dict[str, Any] = {"ks": {}, "intents": len(data["intents"]), "default_min_score": None}
    queries: list[tuple[str, str | None]] = [*data["test"], *((q, None) for q in data["oos"][: args.oos])]
    try:
        app = create_app(settings)
        async with LifespanManager(app, startup_timeout=120) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://localhost", timeout=60
            ) as client:
                taught = 0
                for k in args.ks:
                    began = time.perf_counter()
                    batch = [(q, i) for i in data["intents"] for q in data["train"][i][taught:k]]
                    await teach(client, batch)
                    taught = k
                    rows = await evaluate(client, queries)
                    results["ks"][str(k)] = {"rows": rows, "seconds": time.perf_counter() - began}
                    print(f"recall outcomes so far: {OUTCOMES}", flush=True)
                    default = score_rule(rows)
                    print(
                        f"k={k}: {len(batch)} questions taught; default policy: precision {default['precision']:.3f} "
                        f"(best lesson {default['precision_best']:.3f}) recall {default['recall']:.3f} "
                        f"out-of-scope injected {default['oos_rate']:.2%}",
                        flush=True,
                    )
                    if args.traffic and k == args.ks[-1]:
                        rows, took = await after_traffic(client, data, queries, args)
                        results["ks"][f"{k}+traffic"] = {"rows": rows, "seconds": took}
                if args.entities:
                    results["entities"] = await entities(client)
    finally:
        fake.stop()
        shutil.rmtree(work, ignore_errors=True)
    results["default_min_score"] = shipped["recall"]["min_score"]
    results["default_min_margin"] = shipped["recall"]["min_margin"]
    results["outcomes"] = dict(OUTCOMES)
    results["ablated"] = sorted(args.ablate)
    return results


async def after_traffic(
    client: httpx.AsyncClient,
    data: dict[str, Any],
    queries: list[tuple[str, str | None]],
    args: argparse.Namespace,
) -> tuple[list[dict[str, Any]], float]:
    """The app's own traffic (CLINC150's validation split, never tested on) through the proxy,
    a share of its users giving feedback as they would: +1 when the lesson injected was right
    (its question joins the lesson), -1 with the right correction when it was wrong or missing
    (merged into the lesson teaching it; a wrong lesson keeps the question as one it is wrong
    for), -1 alone on an off-topic question that got a lesson. Then the test split again."""
    began = time.perf_counter()
    rng = random.Random(args.seed)
    items: list[tuple[str, str | None]] = [*data["val"], *((q, None) for q in data["oos_val"])]
    rng.shuffle(items)
    said: dict[str, int] = {}
    for n, (query, gold) in enumerate(items[: args.traffic]):
        injected = await explain(client, query, None)
        headers = {"X-App": APP, "X-Session-Id": f"traffic-{n}"}
        body = {"model": "fake", "messages": [{"role": "user", "content": query}]}
        answer = (await client.post("/v1/chat/completions", json=body, headers=headers)).json()
        if rng.random() >= args.feedback_rate:
            continue
        if gold is not None and gold in injected:
            kind, fields = "accepted", {"rating": 1}
        elif gold is not None:
            kind = "corrected, wrong lesson" if injected else "corrected, no lesson"
            fields = {"rating": -1, "categories": ["factually_incorrect"], "correction": correction(gold)}
        elif injected:
            kind, fields = "off-topic, lesson disliked", {"rating": -1}
        else:
            continue
        said[kind] = said.get(kind, 0) + 1
        (
            await client.post("/v1/feedback", json={"interaction_id": answer["id"], **fields})
        ).raise_for_status()
    active = (await client.get("/v1/lessons", params={"status": "active", "limit": 1000})).json()["data"]
    print(f"traffic: {args.traffic} turns, feedback {said}; {len(active)} active lessons", flush=True)
    rows = await evaluate(client, queries)
    default = score_rule(rows)
    print(
        f"after traffic: precision {default['precision']:.3f} (best lesson {default['precision_best']:.3f}) "
        f"recall {default['recall']:.3f} out-of-scope injected {default['oos_rate']:.2%}",
        flush=True,
    )
    return rows, time.perf_counter() - began


async def entities(client: httpx.AsyncClient) -> dict[str, Any]:
    """Lessons that differ only in a name: does each question get its own lesson?"""
    lessons, cases = entity_set.questions()
    await teach(client, [(q, str(n)) for n, (q, _) in enumerate(lessons)], app=ENTITIES)
    rows = await evaluate(client, [(c.question, str(c.lesson)) for c in cases], app=ENTITIES, sweep=False)
    out: dict[str, Any] = {"lessons": len(lessons)}
    for kind in ("repeat", "paraphrase"):
        mine = [r for r, c in zip(rows, cases, strict=True) if c.kind == kind]
        out[kind] = score_rule(mine)
        print(f"entities, {kind}s: {out[kind]}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="the clinc150 folder (data_full.json)")
    parser.add_argument("--ks", type=lambda s: [int(x) for x in s.split(",")], default=[1, 3, 5])
    parser.add_argument("--intents", type=int, default=None, help="only the first N intents (quick runs)")
    parser.add_argument("--oos", type=int, default=1000, help="out-of-scope test queries used")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs")
    parser.add_argument("--entities", action="store_true", help="also the lessons that differ in a name")
    parser.add_argument(
        "--traffic", type=int, default=0, help="then this many turns of the app's own traffic"
    )
    parser.add_argument(
        "--feedback-rate", type=float, default=0.3, help="share of traffic turns given feedback"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--ablate",
        type=lambda s: set(s.split(",")),
        default=set(),
        help="lexical: without the words' evidence",
    )
    parser.add_argument("--rows", type=Path, default=None, help="also save every query's candidates here")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    summary = {
        k: {**v, "rows": None, **curves(v["rows"], THRESHOLDS, MARGINS)} for k, v in results["ks"].items()
    }
    args.out.mkdir(parents=True, exist_ok=True)
    if args.rows:
        args.rows.write_text(json.dumps({k: v["rows"] for k, v in results["ks"].items()}))
    report = {
        "summary": summary,
        "default_min_score": results["default_min_score"],
        "default_min_margin": results["default_min_margin"],
        "intents": results["intents"],
        "entities": results.get("entities"),
        "outcomes": results["outcomes"],
        "ablated": results["ablated"],
    }
    (args.out / "retrieval.json").write_text(json.dumps(report, indent=1))
    write_report(results, summary, args.out)
    print(f"wrote {args.out / 'retrieval.md'}", flush=True)


if __name__ == "__main__":
    main()
