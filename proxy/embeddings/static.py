"""A static embedding distilled from the sentence model, and the windows of a long turn.

Recall's cheap first stage. Every vocabulary token is run through the bundled MiniLM once
(`OnnxSentenceModel.token_vectors`); the table is centred, reduced to STATIC_DIMS by PCA and
weighted by SIF (rare tokens count more; BERT's vocabulary is ordered by frequency, so the rank
stands in for a corpus count), as model2vec's `distill` does. A text's static vector is then the
normalised sum of its tokens' rows: ~0.05 ms at any length, against 5-35 ms for the model.
Too weak to choose a lesson alone (on CLINC150, top-1 intent 0.57 against MiniLM's 0.74, measured
once while choosing the recipe); strong enough, once mapped into the model's space
(`learning/projection.py`), to rule out what cannot match (`bench/gate.py`) and to find which
sentence of a long turn is the question.

Written here rather than taken from model2vec: its distillation needs torch and transformers
(gigabytes) to compute what one onnxruntime pass over the vocabulary gives.
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

STATIC_DIMS = 256
GATE_DIMS = 128  # the gate compares in the model space's first principal components
SIF_A = 1e-4  # SIF's smoothing: a token's weight is a / (a + p), p its (Zipf) probability
VERSION = 3  # of the recipe: a cached table of another version is distilled again
FIRST_PIECE = 999  # BERT's vocabulary: ids below are padding, [unused] and special tokens
# Where a turn is cut into windows: after a sentence's end, or at a line break.
SENTENCE_END = re.compile(r"(?<=[.!?。？！])\s+|\s*\n\s*")
# At most this many windows per turn (each is one search of the cheap stage): sentences with a
# question mark first, then the others in order, among the first MAX_PIECES (a turn of thousands
# of one-word sentences cost 8 ms on the event loop before that bound).
MAX_WINDOWS = 8
MAX_PIECES = 64


@dataclass(frozen=True)
class Windows:
    """The parts of a turn the model may read: the whole turn when it fits in one window,
    otherwise its sentences (a long one cut in overlapping pieces), with their static vectors."""

    texts: tuple[str, ...]
    vectors: np.ndarray  # len(texts) x STATIC_DIMS, unit length (zero for a text with no tokens)


@dataclass(frozen=True)
class Prior:
    """What the vocabulary says about the map from static vectors to the model's: the sums
    x'x and x'y over every word piece (x its unit static row, y the model's unit vector for the
    token alone, in the GATE_DIMS principal directions of those vectors), from which a ridge map
    is solved before any traffic is seen. Measured once on CLINC150 with bench/gate.py's data and
    a 3,000-pair map, out-of-scope turns ruled out at 99% kept: 128 directions 74%, all 384 dims
    78%, 64 dims 57% (bench/gate.py itself maps into all 384); 128 costs a third of 384's search."""

    xx: np.ndarray  # STATIC_DIMS x STATIC_DIMS
    xy: np.ndarray  # STATIC_DIMS x GATE_DIMS
    basis: np.ndarray  # model dims x GATE_DIMS: the model space's principal directions
    pairs: int


class StaticModel:
    def __init__(self, tokenizer_file: Path, table: np.ndarray, prior: Prior | None = None) -> None:
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._table = table.astype(np.float16)  # weights folded in; half the memory, same ranks
        self.prior = prior

    @property
    def dims(self) -> int:
        return int(self._table.shape[1])

    @staticmethod
    def distil(raw: np.ndarray) -> np.ndarray:
        """The table from the model's raw token vectors: centred, PCA-reduced, SIF-weighted."""
        centred = raw - raw.mean(axis=0)
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        reduced = centred @ components[:STATIC_DIMS].T
        rank = np.arange(1, len(raw) + 1, dtype=np.float64)
        zipf = (1 / rank) / (1 / rank).sum()
        weights = SIF_A / (SIF_A + zipf)
        table: np.ndarray = (reduced * weights[:, None]).astype(np.float32)
        return table

    @staticmethod
    def vocabulary_prior(table: np.ndarray, raw: np.ndarray) -> Prior:
        x = unit(table[FIRST_PIECE:].astype(np.float64))
        y = unit(raw[FIRST_PIECE:].astype(np.float64))
        _, _, directions = np.linalg.svd(y, full_matrices=False)
        basis = directions[: min(GATE_DIMS, y.shape[1])].T
        return Prior(x.T @ x, x.T @ (y @ basis), basis, len(x))

    @classmethod
    def cached(cls, directory: Path, tokenizer_file: Path, raw: Callable[[], np.ndarray]) -> StaticModel:
        """Load the distilled table and prior from `directory`, or distil them (calling `raw`)
        and keep them there."""
        path = directory / f"static-v{VERSION}-{STATIC_DIMS}.npz"
        directory.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            with np.load(path) as stored:
                prior = Prior(stored["xx"], stored["xy"], stored["basis"], int(stored["pairs"]))
                return cls(tokenizer_file, stored["table"], prior)
        vectors = raw()
        table = cls.distil(vectors)
        prior = cls.vocabulary_prior(table, vectors)
        partial = path.with_suffix(f".{os.getpid()}.partial.npz")
        with partial.open("wb") as out:
            table16, pairs = table.astype(np.float16), np.asarray(prior.pairs)
            np.savez(out, table=table16, xx=prior.xx, xy=prior.xy, basis=prior.basis, pairs=pairs)
        partial.replace(path)  # a crash mid-write leaves no half table behind
        return cls(tokenizer_file, table, prior)

    def _vectors(self, ids: list[list[int]]) -> np.ndarray:
        out = np.zeros((len(ids), self.dims), dtype=np.float32)
        for row, token_ids in enumerate(ids):
            if token_ids:
                out[row] = self._table[token_ids].sum(axis=0, dtype=np.float32)
        return unit(out)

    def embed(self, texts: list[str]) -> np.ndarray:
        encoded = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        return self._vectors([e.ids for e in encoded])

    def windows(self, text: str, max_tokens: int) -> Windows:
        """The whole text if it has at most `max_tokens` tokens; else its sentences, a sentence
        longer than that cut in pieces of `max_tokens` that overlap by half."""
        whole = self._tokenizer.encode(text, add_special_tokens=False)  # once: a sentence is a slice
        ids, offsets = whole.ids, whole.offsets
        if len(ids) <= max_tokens:
            return Windows((text,), self._vectors([ids]))
        ends = [m.start() for m in SENTENCE_END.finditer(text)]
        texts: list[str] = []
        pieces: list[list[int]] = []
        first, step = 0, max(1, max_tokens // 2)
        while first < len(ids) and len(texts) < MAX_PIECES:  # a sentence: up to the next boundary
            after = bisect.bisect_right(ends, offsets[first][0])
            stop = ends[after] if after < len(ends) else len(text)
            last = bisect.bisect_left(offsets, (stop, 0), lo=first)
            long = last - first > max_tokens  # cut in pieces that overlap by half
            for start in range(first, max(first + 1, last - step), step) if long else [first]:
                end = min(start + max_tokens, last)
                texts.append(text[offsets[start][0] : offsets[end - 1][1]])
                pieces.append(ids[start:end])
            first = max(last, first + 1)
        if len(texts) > MAX_WINDOWS:
            order = sorted(sorted(range(len(texts)), key=lambda i: ("?" not in texts[i], i))[:MAX_WINDOWS])
            texts, pieces = [texts[i] for i in order], [pieces[i] for i in order]
        return Windows(tuple(texts), self._vectors(pieces))


def unit(rows: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (a zero row stays zero)."""
    out: np.ndarray = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)
    return out
