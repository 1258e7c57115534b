"""Does a lesson help? Negative-feedback rates, treated versus control, with a confidence interval.

The difference of two proportions gets an Agresti-Caffo interval (one success and one failure
added to each arm), which keeps its coverage with the small counts a single lesson has.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from policies.schema import RetireConfig
from proxy.records import Lesson

Z95 = 1.96
Verdict = Literal["helps", "hurts", "unclear", "no control"]


@dataclass(frozen=True)
class Comparison:
    treated: int
    treated_negative: int
    control: int
    control_negative: int
    treated_rate: float | None
    control_rate: float | None
    difference: float | None  # treated minus control: below zero, fewer complaints when treated
    low: float | None
    high: float | None
    verdict: Verdict

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rate(negative: int, total: int) -> float | None:
    return min(negative, total) / total if total else None


def compare(treated: int, treated_negative: int, control: int, control_negative: int) -> Comparison:
    treated_negative, control_negative = min(treated_negative, treated), min(control_negative, control)
    t_rate, c_rate = rate(treated_negative, treated), rate(control_negative, control)
    if not treated or not control:
        return Comparison(
            treated,
            treated_negative,
            control,
            control_negative,
            t_rate,
            c_rate,
            None,
            None,
            None,
            "no control",
        )
    p1 = (treated_negative + 1) / (treated + 2)
    p2 = (control_negative + 1) / (control + 2)
    spread = Z95 * math.sqrt(p1 * (1 - p1) / (treated + 2) + p2 * (1 - p2) / (control + 2))
    difference = p1 - p2
    low, high = difference - spread, difference + spread
    verdict: Verdict = "helps" if high < 0 else "hurts" if low > 0 else "unclear"
    return Comparison(
        treated, treated_negative, control, control_negative, t_rate, c_rate, difference, low, high, verdict
    )


def lesson_effect(lesson: Lesson) -> Comparison:
    return compare(
        lesson.times_injected, lesson.negative_after, lesson.times_held_out, lesson.control_negative
    )


def retire_reason(lesson: Lesson, config: RetireConfig) -> str | None:
    """Why this lesson should go, under `config`'s thresholds; None while it earns its place."""
    if lesson.status != "active" or lesson.times_injected < config.min_injections:
        return None
    effect = lesson_effect(lesson)
    negative_rate = effect.treated_rate or 0.0
    if negative_rate >= config.max_negative_rate:
        return (
            f"{effect.treated_negative} of {effect.treated} injected turns drew negative feedback "
            f"({negative_rate:.0%} >= {config.max_negative_rate:.0%})"
        )
    if config.versus_control and effect.verdict == "hurts":
        return (
            f"worse than its control arm: {negative_rate:.0%} negative when injected vs "
            f"{effect.control_rate or 0:.0%} held out (95% CI of the difference "
            f"{effect.low:+.0%}..{effect.high:+.0%})"
        )
    return None
