"""What operators scrape at `/metrics`, in Prometheus' text format (prometheus_client).

One registry per app (tests and embedders run several in a process). Every label takes a bounded
set of values: a model is named as configured (a name a wildcard entry covers counts under the
entry's pattern), an HTTP route by its template, never its path, so no client can grow the
series without limit, and no label carries a user's id or text.

Turns (`observe_turn`) are counted from the interaction the trail records, in the one place each
turn ends; every HTTP request, whatever its route and however it ended (a 401 included), by the
access middleware (`observe_http`); state that lives elsewhere (lessons by status, the trail
writer's queue and errors, the index's graph) is read when scraped (`Gauges`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from proxy.records import Feedback, Interaction

SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
OVERHEAD = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
RECALL = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.5)
CONTENT_TYPE = CONTENT_TYPE_LATEST
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
log = logging.getLogger("loopwise.metrics")
disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` twin per series (process-wide)


def _amount(value: object) -> float:
    """A count or a cost from the provider or the price table, if it is a finite number above
    zero; else 0 (a string, a negative or NaN would raise in, or poison, a counter)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if math.isfinite(value) and value > 0 else 0.0


@dataclass
class Gauges:
    """Read at each scrape: the trail writer's queue and failed writes, the index's background
    graph builds (lessons by status come with the scrape: `exposition`)."""

    trail_queued: Callable[[], int]
    trail_errors: Callable[[], int]
    graph_building: Callable[[], bool]


class _Read(Collector):
    def __init__(self, gauges: Gauges, lessons: Callable[[], Mapping[str, int]]) -> None:
        self.gauges, self.lessons = gauges, lessons

    def collect(self) -> Iterator[Metric]:
        lessons = GaugeMetricFamily(
            "loopwise_lessons", "Lessons in the trail DB by status", labels=["status"]
        )
        for status, count in sorted(self.lessons().items()):
            lessons.add_metric([status], count)
        yield lessons
        yield GaugeMetricFamily(
            "loopwise_trail_queue_depth", "Interactions waiting for the trail writer",
            value=self.gauges.trail_queued(),
        )  # fmt: skip
        yield CounterMetricFamily(
            "loopwise_trail_write_errors", "Trail writes that failed", value=self.gauges.trail_errors()
        )
        yield GaugeMetricFamily(
            "loopwise_index_graph_building", "1 while the embedded index's graph is built in the background",
            value=int(self.gauges.graph_building()),
        )  # fmt: skip


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self._lessons: Mapping[str, int] = {}  # as counted for the scrape being served
        turn = ["model", "endpoint", "status", "adapter"]

        def counter(name: str, text: str, labels: Sequence[str] = ()) -> Counter:
            return Counter(name, text, labels, registry=r)

        def histogram(name: str, text: str, labels: Sequence[str], buckets: Sequence[float]) -> Histogram:
            return Histogram(name, text, labels, buckets=buckets, registry=r)

        self.requests = counter("loopwise_requests", "Model requests answered, by outcome", turn)
        self.latency = histogram(
            "loopwise_request_duration_seconds", "Time from arrival to the answer's end", turn, SECONDS
        )
        self.overhead = histogram(
            "loopwise_proxy_overhead_seconds",
            "The proxy's own time in a model request (all but the provider's)",
            ["endpoint", "adapter"],
            OVERHEAD,
        )
        self.recall = counter(
            "loopwise_recall",
            "Recall outcomes (ok, timeout, shed, skipped, disabled, error), by the stage that decided",
            ["status", "stage"],
        )
        self.recall_latency = histogram(
            "loopwise_recall_duration_seconds", "Recall's time, where it ran", ["stage"], RECALL
        )
        self.injected = counter("loopwise_lessons_injected", "Lessons injected into requests")
        self.shadowed = counter("loopwise_lessons_withheld", "Lessons recalled but withheld (control arm)")
        self.asked = counter(
            "loopwise_feedback_wanted",
            "Answers that asked the app for feedback (X-Loopwise-Feedback-Wanted)",
            ("reason",),
        )
        self.retries = counter(
            "loopwise_upstream_retries",
            "Provider calls beyond a request's first (retries, fallbacks)",
            ["model"],
        )
        self.tokens = counter("loopwise_tokens", "Tokens the provider reported", ["model", "kind"])
        self.cost = counter("loopwise_cost_usd", "Cost of the answers, where the price is known", ["model"])
        self.feedback = counter(
            "loopwise_feedback",
            "Feedback recorded, by source (user, reviewer, implicit) and kind",
            ["source", "kind"],
        )
        self.http = counter(
            "loopwise_http_requests", "HTTP requests, by route and status", ["method", "route", "status"]
        )
        self.http_latency = histogram(
            "loopwise_http_request_duration_seconds",
            "HTTP requests' time to their last byte",
            ["route"],
            SECONDS,
        )

    def read(self, gauges: Gauges) -> None:
        self.registry.register(_Read(gauges, lambda: self._lessons))

    def observe_turn(self, turn: Interaction, model: str, adapter: str) -> None:
        """Never raises: a provider's odd usage numbers must not fail the answer they came with."""
        try:
            self._turn(turn, model, adapter)
        except Exception:  # logged; the request is done
            log.exception("metrics skipped for %s", turn.id)

    def _turn(self, turn: Interaction, model: str, adapter: str) -> None:
        status = turn.status
        self.requests.labels(model, turn.endpoint, status, adapter).inc()
        self.latency.labels(model, turn.endpoint, status, adapter).observe(turn.latency_ms / 1000)
        self.overhead.labels(turn.endpoint, adapter).observe(turn.overhead_ms / 1000)
        stage = turn.recall_stage or "none"
        self.recall.labels(turn.recall_status, stage).inc()
        if turn.recall_ms is not None:
            self.recall_latency.labels(stage).observe(turn.recall_ms / 1000)
        if turn.injected:
            self.injected.inc(len(turn.injected))
        if turn.shadow:
            self.shadowed.inc(len(turn.shadow))
        if turn.feedback_wanted:
            self.asked.labels(turn.feedback_wanted).inc()
        if turn.attempts > 1:
            self.retries.labels(model).inc(turn.attempts - 1)
        for kind, count in (("prompt", turn.prompt_tokens), ("completion", turn.completion_tokens)):
            if tokens := _amount(count):
                self.tokens.labels(model, kind).inc(tokens)
        if cost := _amount(turn.cost_usd):
            self.cost.labels(model).inc(cost)

    def observe_feedback(self, feedback: Feedback) -> None:
        """By source, and kind: the implicit signal, else the verdict (negative, positive or
        neutral)."""
        verdict = {True: "negative", False: "positive", None: "neutral"}[feedback.negative]
        kind = feedback.signal or ("preferred" if feedback.preferred_over else verdict)
        self.feedback.labels(feedback.source, kind).inc()

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http.labels(method if method in METHODS else "other", route, str(status)).inc()
        self.http_latency.labels(route).observe(seconds)

    def exposition(self, lessons: Mapping[str, int]) -> bytes:
        """The text format, with `lessons` (by status, just counted in the trail DB)."""
        self._lessons = lessons
        return generate_latest(self.registry)
