"""How far can any decision over these sentence vectors go? The ceiling behind docs/retrieval.md.

    python bench/retrieval_ceiling.py --data ../shared/data/clinc150 [--ks 5,10]

The bundled all-MiniLM-L6-v2 embeds CLINC150's first k training queries per intent (the lessons)
and its test and out-of-scope queries, as recall would. Then, offline and without the proxy,
several ways to decide which intent a query gets are scored for the best recall they reach at
precision >= 0.95 (with and without out-of-scope <= 1%): the nearest lesson with a margin over
the best other intent (what recall does), the nearest intent centroid, and a logistic probe
trained on the lessons (softmax over cosine to learned class vectors; the "light scorer").
No lexical evidence or triggers here: this measures the vectors.

Then the decision rules themselves on the same vectors, over all 150 intents and over the 30
close ones of two domains (banking, credit cards): plain dense top-1 at 0.65; the rule before
this change (the nearest lesson, a margin over another correction, every lesson at min_score);
the shipped one (`proxy.chat.recall.decisive`, fed the index's top 15 hits as Hits), also
without the words' evidence; and the shipped one with a correction scored by the mean of its
two best lessons instead of its best. No cheap stage here (the API's numbers include it).
Precision counts every injected lesson. Writes docs/retrieval-ceiling.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policies import RecallConfig
from proxy.chat import recall
from proxy.embeddings import FastEmbedder
from proxy.settings import EmbeddingSettings
from proxy.vectors import Hit

SHIPPED = RecallConfig()  # min_score 0.62, min_margin 0.08, top_k 3


async def embed_all(texts: list[str]) -> dict[str, np.ndarray]:
    embedder = FastEmbedder(EmbeddingSettings(cache_size=0), Path(tempfile.mkdtemp()))
    await embedder.start()
    try:
        return {t: np.asarray(await embedder.embed(t), dtype=np.float32) for t in dict.fromkeys(texts)}
    finally:
        embedder.close()


def best_recall(
    right: np.ndarray, confidence: np.ndarray, oos_confidence: np.ndarray | None, precision: float = 0.95
) -> tuple[float, float | None]:
    """The highest recall at `precision` or more, and the confidence threshold it needs; with
    `oos_confidence`, also keeping out-of-scope queries at or under 1%."""
    order = np.argsort(-confidence)
    hits = np.cumsum(right[order])
    taken = np.arange(1, len(order) + 1)
    best, at = 0.0, None
    for n in range(len(order)):
        if hits[n] / taken[n] < precision:
            continue
        threshold = confidence[order[n]]
        if oos_confidence is not None and (oos_confidence >= threshold).mean() > 0.01:
            continue
        if hits[n] / len(order) > best:
            best, at = hits[n] / len(order), float(threshold)
    return best, at


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(1, keepdims=True))


def probe(x: np.ndarray, y: np.ndarray, classes: int, temp: float = 10.0, steps: int = 100) -> np.ndarray:
    """Class vectors, from the centroids, by gradient descent on the softmax of temp * cosine."""
    w = np.stack([x[y == c].mean(0) for c in range(classes)])
    start, onehot = w.copy(), np.eye(classes)[y]
    for _ in range(steps):
        p = softmax(temp * x @ w.T)
        w -= 0.5 * (temp * (p - onehot).T @ x / len(x) + 1e-3 * (w - start))
    return w


def measure(vectors: dict[str, np.ndarray], raw: dict[str, Any], k: int) -> dict[str, Any]:
    train: dict[str, list[str]] = {}
    for query, intent in raw["train"]:
        train.setdefault(intent, []).append(query)
    intents = sorted(train)
    lessons = [(q, i) for i in intents for q in train[i][:k]]
    t = np.stack([vectors[q] for q, _ in lessons])
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    labels = np.array([intents.index(i) for _, i in lessons])
    q = np.stack([vectors[x] for x, _ in raw["test"]])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    gold = np.array([intents.index(i) for _, i in raw["test"]])
    o = np.stack([vectors[x] for x, _ in raw["oos_test"]])
    o /= np.linalg.norm(o, axis=1, keepdims=True)

    def per_intent(s: np.ndarray) -> np.ndarray:
        return np.stack([s[:, labels == c].max(1) for c in range(len(intents))], axis=1)

    out: dict[str, Any] = {"k": k}
    nearest, nearest_oos = per_intent(q @ t.T), per_intent(o @ t.T)
    centroids = np.stack([t[labels == c].mean(0) for c in range(len(intents))])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    w = probe(t, labels, len(intents))
    rules = {
        "nearest lesson, margin": (nearest, nearest_oos, "margin"),
        "nearest centroid, margin": (q @ centroids.T, o @ centroids.T, "margin"),
        "logistic probe, probability": (softmax(10 * q @ w.T), softmax(10 * o @ w.T), "max"),
    }
    for name, (scores, oos, kind) in rules.items():
        top = scores.argmax(1)
        ranked, ranked_oos = np.sort(scores, 1), np.sort(oos, 1)
        if kind == "margin":
            conf, conf_oos = ranked[:, -1] - ranked[:, -2], ranked_oos[:, -1] - ranked_oos[:, -2]
        else:
            conf, conf_oos = ranked[:, -1], ranked_oos[:, -1]
        right = (top == gold).astype(float)
        out[name] = {
            "top1_accuracy": float(right.mean()),
            "best_recall_at_p95_any_oos": best_recall(right, conf, None)[0],
            "best_recall_at_p95_oos_1pct": best_recall(right, conf, conf_oos)[0],
        }
        print(f"k={k} {name}: {out[name]}", flush=True)
    return out


def _before(hits: list[Hit], config: RecallConfig) -> list[Hit]:
    """The decision before this change: the best lesson must beat the best lesson teaching
    something else by min_margin; then every lesson at min_score, up to top_k."""
    if not hits:
        return []
    best = hits[0].payload["correction"]
    rival = next((h.score for h in hits[1:] if h.payload["correction"] != best), None)
    if rival is not None and hits[0].score - rival < config.min_margin:
        return []
    return [h for h in hits if h.score >= config.min_score][: config.top_k]


def _without_words(hits: list[Hit], text: str) -> list[Hit]:
    kept, recall.LEXICAL = recall.LEXICAL, 0.0
    try:
        return recall.decisive(hits, SHIPPED, text)
    finally:
        recall.LEXICAL = kept


def _two_best(hits: list[Hit], config: RecallConfig, text: str) -> list[Hit]:
    """The shipped decision, a correction scored by the mean of its two best lessons."""
    taught = recall.agreement(hits, text)
    rescored = []
    for t in taught:
        mean = sum(h.score for h in t.hits[:2]) / len(t.hits[:2])
        rescored.append(recall.Taught(mean, t.rank - t.score + mean, t.hits))
    rescored.sort(key=lambda t: -t.rank)
    if not rescored or (len(rescored) > 1 and rescored[0].rank - rescored[1].rank < config.min_margin):
        return []
    return [rescored[0].hits[0]] if rescored[0].score >= config.min_score else []


def rules_on(
    vectors: dict[str, np.ndarray], raw: dict[str, Any], intents: list[str], k: int
) -> dict[str, Any]:
    train: dict[str, list[str]] = {}
    for query, intent in raw["train"]:
        train.setdefault(intent, []).append(query)
    lessons = [(q, i) for i in intents for q in train[i][:k]]
    t = np.stack([vectors[q] for q, _ in lessons])
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    tests = [(q, i) for q, i in raw["test"] if i in intents]
    oos = [(q, None) for q, _ in raw["oos_test"][:500]]
    floor = SHIPPED.min_score - SHIPPED.min_margin
    decide = {
        "dense top-1 at 0.65": lambda hits, text: [h for h in hits[:1] if h.score >= 0.65],
        "before (nearest, margin, every lesson)": lambda hits, text: _before(hits, SHIPPED),
        "shipped without the words (LEXICAL 0)": lambda hits, text: _without_words(hits, text),
        "shipped (decisive)": lambda hits, text: recall.decisive(hits, SHIPPED, text),
        "shipped, mean of two best": lambda hits, text: _two_best(hits, SHIPPED, text),
    }
    counts = {
        name: {"right": 0, "lessons": 0, "recalled": 0, "oos": 0, "turns": 0, "best": 0} for name in decide
    }
    for text, gold in [*tests, *oos]:
        v = vectors[text] / np.linalg.norm(vectors[text])
        scores = t @ v
        top = [int(i) for i in np.argsort(-scores)[:15] if scores[i] >= floor]
        hits = [
            Hit(
                str(i),
                float(scores[i]),
                {"correction": lessons[i][1], "question": lessons[i][0], "lesson_id": str(i)},
            )
            for i in top
        ]
        for name, rule in decide.items():
            given = [h.payload["correction"] for h in rule(hits, text)]
            c = counts[name]
            if gold is None:
                c["oos"] += bool(given)
            else:
                c["turns"] += bool(given)
                c["best"] += bool(given) and given[0] == gold
                c["lessons"] += len(given)
                c["right"] += sum(g == gold for g in given)
                c["recalled"] += gold in given
    out = {}
    for name, c in counts.items():
        out[name] = {
            "precision": c["right"] / c["lessons"] if c["lessons"] else 1.0,
            "precision_best": c["best"] / c["turns"] if c["turns"] else 1.0,
            "recall": c["recalled"] / len(tests),
            "oos_rate": c["oos"] / len(oos),
        }
        print(f"{len(intents)} intents, k={k}, {name}: {out[name]}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--ks", type=lambda s: [int(x) for x in s.split(",")], default=[5, 10])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs")
    args = parser.parse_args()
    raw = json.loads((args.data / "data_full.json").read_text())
    train: dict[str, list[str]] = {}
    for query, intent in raw["train"]:
        train.setdefault(intent, []).append(query)
    texts = [q for qs in train.values() for q in qs[: max(args.ks)]]
    texts += [q for q, _ in raw["test"]] + [q for q, _ in raw["oos_test"]]
    vectors = asyncio.run(embed_all(texts))
    results: dict[str, Any] = {"ceiling": [measure(vectors, raw, k) for k in args.ks], "rules": {}}
    domains = json.loads((args.data / "domains.json").read_text())
    every = sorted({i for _, i in raw["train"]})
    close = sorted(i for d in ("banking", "credit_cards") for i in domains[d])
    for name, intents in (("150 intents", every), ("30 close intents", close)):
        results["rules"][name] = {str(k): rules_on(vectors, raw, intents, k) for k in (3, 5)}
    (args.out / "retrieval-ceiling.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out / 'retrieval-ceiling.json'}")


if __name__ == "__main__":
    main()
