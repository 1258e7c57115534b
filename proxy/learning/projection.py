"""The cheap stage's learned map: a ridge regression from a window's static vector to the model's
vector for it, so the gate compares a turn with the lessons' own model vectors.

It starts from the vocabulary (`Prior`: every word piece against the model's vector for it, worth
PRIOR_PAIRS sentences) and learns from the proxy's own traffic for free: every window the model
embeds is one more (static, model) pair. Measured on CLINC150 (`bench/gate.py`): the vocabulary
alone rules out no more than the static vectors do, and 3,000 pairs of the app's own questions
take the out-of-scope turns ruled out from 31% to 74% at 99.5% of the right matches kept.
Refitted on a doubling schedule, each refit a new `version`, since it changes the scale of the
gate's scores (see `Calibration`).
"""

from __future__ import annotations

import numpy as np

from proxy.embeddings.static import Prior, unit

PRIOR_PAIRS = 1000  # how many traffic pairs the whole vocabulary is worth
RIDGE = 1.0
FIRST_REFIT = 64
MAX_GAP = 8192  # pairs between two refits once the map has settled


class Projection:
    def __init__(self, prior: Prior) -> None:
        weight = PRIOR_PAIRS / max(prior.pairs, 1)
        self._xx = prior.xx.astype(np.float64) * weight
        self._xy = prior.xy.astype(np.float64) * weight
        self.basis = prior.basis.astype(np.float32)  # the model's vectors, in the gate's space
        self.pairs = 0  # traffic pairs folded in
        self.version = 0
        self._next = FIRST_REFIT
        self.matrix = self._solve()

    def _solve(self) -> np.ndarray:
        eye = np.eye(self._xx.shape[0])
        matrix: np.ndarray = np.linalg.solve(self._xx + RIDGE * eye, self._xy).astype(np.float32)
        return matrix

    def project(self, vectors: np.ndarray) -> np.ndarray:
        """Static vectors (rows) to unit vectors in the gate's space."""
        return unit(vectors @ self.matrix)

    def reduce(self, model: np.ndarray) -> np.ndarray:
        """Model vectors (rows) to unit vectors in the gate's space."""
        return unit(np.atleast_2d(model) @ self.basis)

    def observe(self, static: np.ndarray, model: np.ndarray) -> bool:
        """One (static, model) pair folded in (~0.05 ms); True when it triggered a refit (a new
        version: one solve, ~2 ms, after 64, 128, 256, ... pairs, then every MAX_GAP)."""
        x = static.astype(np.float64)
        self._xx += np.outer(x, x)
        self._xy += np.outer(x, self.reduce(model)[0].astype(np.float64))
        self.pairs += 1
        if self.pairs < self._next:
            return False
        self._next = self.pairs + min(self.pairs, MAX_GAP)
        self.matrix = self._solve()
        self.version += 1
        return True
