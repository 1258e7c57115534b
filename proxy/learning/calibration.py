"""The cheap stage's threshold, kept where it lets through KEEP of the turns the model would match.

The gate's scores are predictions (a learned map), and their scale moves as the map learns (on
CLINC150 the threshold that keeps 99.5% of the right matches is 0.30 for the vocabulary alone and
0.48 after 3,000 pairs: `bench/gate.py`), so no fixed number fits. Every turn the model ran on
says what the gate scored it and whether the model then found a lesson at `min_score`. Turns the
gate let through are all seen; of the ones it ruled out, a random EXPLORE share still runs the
model when the model has nothing queued (idle capacity only; a lesson found that way is injected
like any other). An explored match stands for the ruled-out turns per completed exploration
actually achieved (under load fewer are explored, so each counts more: a fixed 1/EXPLORE would let
the threshold only ever rise). The weighted (1 - KEEP) quantile of the gate scores of matched
turns is the threshold, never above CAP. Until MIN_MATCHES are seen after a refit of the map,
the last threshold (at first COLD) stays.
"""

from __future__ import annotations

import random
from collections import deque

KEEP = 0.995
EXPLORE = 0.05
MIN_MATCHES = 20.0  # weighted
COLD = 0.28  # the vocabulary-only map's threshold keeping every right match on CLINC150
CAP = 0.8  # however the samples fall, a turn scoring this much always reaches the model
WINDOW = 2000  # matched turns remembered, per scope
EVERY = 8  # matched turns between two re-estimates


class Calibration:
    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._matched: deque[tuple[float, float]] = deque(maxlen=WINDOW)  # (gate score, weight)
        self._since = 0
        self.threshold = COLD
        self.version = 0  # of the map the samples were scored with
        self._ruled_out = 0  # turns below the threshold ...
        self._explored = 0  # ... and those of them the model ran on to the end

    def explore(self) -> bool:
        """A turn scored below the threshold: whether to run the model on it anyway."""
        self._ruled_out += 1
        return self._rng.random() < EXPLORE

    def record(self, score: float, matched: bool, explored: bool, version: int) -> None:
        """A turn the model ran on: the gate's `score`, whether the model found a lesson at
        min_score, whether it ran only to explore, and the map `version` that scored it."""
        if version != self.version:  # a refit moved the scale: start counting again
            self._matched.clear()
            self.version = version
        if explored:
            self._explored += 1
        if not matched:
            return
        weight = max(1.0, self._ruled_out / self._explored) if explored else 1.0
        self._matched.append((score, weight))
        self._since += 1
        if self._since >= EVERY:
            self._since = 0
            self._estimate()

    def _estimate(self) -> None:
        ordered = sorted(self._matched)
        total = sum(weight for _, weight in ordered)
        if total < MIN_MATCHES:
            return
        below, target = 0.0, (1 - KEEP) * total
        for score, weight in ordered:
            below += weight
            if below >= target:
                self.threshold = min(score, CAP)
                return
