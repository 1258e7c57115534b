"""How well recall's cheap stage can rule out turns, on CLINC150, and what a learned map adds.

    python bench/gate.py --data ../shared/data/clinc150 [--fit 3000] [--out docs/gate.json]

Lessons: the first 5 training queries of every intent (as bench/retrieval.py teaches them). For
each test query (in scope, and out of scope), the gate's best score against the lessons is set
beside what the model would do: a query is one the gate must keep when the model's best lesson
is of its own intent and scores at least the shipped min_score. For a target share of those kept
(99%, 99.5%, all), the table gives the threshold, how many queries would still run the model and
how many out-of-scope ones would be ruled out. Variants:

- static: the distilled static vectors against the lessons' static vectors (what ships);
- map: a ridge map from static vectors to the model's space, fitted on (static, model) pairs of
  `--fit` other training queries (the app's own traffic, which a proxy sees for free), scored
  against the lessons' model vectors; and the same map fitted on the vocabulary alone (each
  token's static row against its model vector), which is what a proxy has before any traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policies import RecallConfig
from proxy.embeddings.model import FastEmbedder
from proxy.embeddings.onnx import OnnxSentenceModel
from proxy.embeddings.static import StaticModel, unit
from proxy.settings import EmbeddingSettings

HERE = Path(__file__).resolve().parent
FIRST_PIECE = 999


def keep_table(
    name: str, gate_in: np.ndarray, gate_oos: np.ndarray, must_keep: np.ndarray
) -> list[dict[str, Any]]:
    rows = []
    for keep in (0.99, 0.995, 1.0):
        kept = gate_in[must_keep]
        threshold = float(np.quantile(kept, 1 - keep)) if keep < 1 else float(kept.min())
        rows.append(
            {
                "variant": name,
                "keep": keep,
                "threshold": threshold,
                "model_runs": float((np.r_[gate_in, gate_oos] >= threshold).mean()),
                "out_of_scope_ruled_out": float((gate_oos < threshold).mean()),
            }
        )
    return rows


def ridge(x: np.ndarray, y: np.ndarray, lam: float = 1.0) -> np.ndarray:
    mapped: np.ndarray = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)
    return mapped


def token_pairs(embedder: FastEmbedder, static: StaticModel) -> tuple[np.ndarray, np.ndarray]:
    """Each word piece's static row against its model vector (the model on the token alone):
    the pairs a proxy has before it has seen any traffic (ids below 999 are BERT's specials)."""
    assert embedder._local is not None
    raw = OnnxSentenceModel(embedder._local, 1).token_vectors()
    return unit(static._table[FIRST_PIECE:].astype(np.float32)), unit(raw[FIRST_PIECE:])


async def vectors(args: argparse.Namespace) -> dict[str, Any]:
    raw = json.loads((args.data / "data_full.json").read_text())
    train: dict[str, list[str]] = {}
    for query, intent in raw["train"]:
        train.setdefault(intent, []).append(query)
    lessons = [(q, i) for i, qs in sorted(train.items()) for q in qs[:5]]
    per_intent = max(1, args.fit // len(train))
    fit = [q for _, qs in sorted(train.items()) for q in qs[5 : 5 + per_intent]]
    test = raw["test"]
    oos = [q for q, _ in raw["oos_test"]]
    embedder = FastEmbedder(EmbeddingSettings(cache_size=0), args.cache / "models")
    await embedder.start()
    static = await embedder.load_static()
    assert static is not None

    async def model(texts: list[str]) -> np.ndarray:
        return np.array([await embedder.embed(t) for t in texts], dtype=np.float32)

    out = {
        "lesson_intents": np.array([i for _, i in lessons]),
        "test_intents": np.array([i for _, i in test]),
        "model": {
            k: await model(v)
            for k, v in (
                ("lessons", [q for q, _ in lessons]),
                ("test", [q for q, _ in test]),
                ("oos", oos),
                ("fit", fit),
            )
        },
        "static": {
            k: static.embed(v)
            for k, v in (
                ("lessons", [q for q, _ in lessons]),
                ("test", [q for q, _ in test]),
                ("oos", oos),
                ("fit", fit),
            )
        },
        "tokens": token_pairs(embedder, static),
    }
    embedder.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="the clinc150 folder (data_full.json)")
    parser.add_argument("--fit", type=int, default=3000, help="training queries used to fit the map")
    parser.add_argument("--cache", type=Path, default=HERE / ".cache")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    v = asyncio.run(vectors(args))
    m, s = v["model"], v["static"]
    min_score = RecallConfig().min_score
    best = m["test"] @ m["lessons"].T
    must_keep = (best.max(1) >= min_score) & (v["lesson_intents"][best.argmax(1)] == v["test_intents"])
    rows = keep_table(
        "static", (s["test"] @ s["lessons"].T).max(1), (s["oos"] @ s["lessons"].T).max(1), must_keep
    )
    token_x, token_y = v["tokens"]
    fits = {
        "map, vocabulary only": ridge(token_x, token_y),
        f"map, {len(s['fit'])} traffic pairs": ridge(
            np.r_[s["fit"], token_x * 0.18], np.r_[m["fit"], token_y * 0.18]
        ),
    }
    for name, mapping in fits.items():
        gate_in = (unit(s["test"] @ mapping) @ m["lessons"].T).max(1)
        gate_oos = (unit(s["oos"] @ mapping) @ m["lessons"].T).max(1)
        rows += keep_table(name, gate_in, gate_oos, must_keep)
    print(f"{must_keep.sum()} of {len(must_keep)} in-scope test queries get a right lesson from the model")
    print(f"{'variant':32} {'keep':>6} {'threshold':>9} {'model runs':>10} {'oos ruled out':>13}")
    for row in rows:
        print(
            f"{row['variant']:32} {row['keep']:6.3f} {row['threshold']:9.3f} {row['model_runs']:10.1%} "
            f"{row['out_of_scope_ruled_out']:13.1%}"
        )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
