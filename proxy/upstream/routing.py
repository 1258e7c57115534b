"""What the router decides with: the retry budget, each deployment's health and limits, the
defaults it puts under a request, wildcard names, and LiteLLM's simple-shuffle as an order."""

from __future__ import annotations

import logging
import math
import random
import re
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any

from proxy.errors import UpstreamError
from proxy.settings import Deployment, UpstreamSettings
from proxy.upstream.base import Json, Piece
from proxy.upstream.litellm_adapter import CHAT_PARAMETERS
from proxy.upstream.pricing import token_prices

log = logging.getLogger("loopwise.upstream")
# What a wildcard may fill its star with: a model name, never a path or a second provider URL.
FILLABLE = re.compile(r"[A-Za-z0-9._:@+\-][A-Za-z0-9._:/@+\-]{0,255}")


class RetryBudget:
    """Finagle's RetryBudget: over a sliding window, retries may be `ratio` of the requests plus
    a floor of `minimum`, so retries never multiply load when a provider is down (a retry storm
    costs at most ~20% more calls, not 3x). One per router, i.e. per process."""

    SLOTS = 10

    def __init__(self, ratio: float, minimum: int, window_s: float) -> None:
        self.ratio, self.minimum = ratio, minimum
        self._slot_s = window_s / self.SLOTS
        self._epochs = [-1] * self.SLOTS
        self._requests = [0] * self.SLOTS
        self._retries = [0] * self.SLOTS

    def _slot(self) -> int:
        epoch = int(time.monotonic() / self._slot_s)
        at = epoch % self.SLOTS
        if self._epochs[at] != epoch:
            self._epochs[at], self._requests[at], self._retries[at] = epoch, 0, 0
        return at

    def _live(self, values: list[int]) -> int:
        oldest = int(time.monotonic() / self._slot_s) - self.SLOTS
        return sum(v for v, e in zip(values, self._epochs, strict=True) if e > oldest)

    def request(self) -> None:
        self._requests[self._slot()] += 1

    def try_retry(self) -> bool:
        """Take one retry from the budget, if it has one."""
        at = self._slot()
        if self._live(self._retries) >= self.minimum + self.ratio * self._live(self._requests):
            return False
        self._retries[at] += 1
        return True


@dataclass
class Health:
    """What the router knows of one deployment: failures in a row, cooldown, this minute's use."""

    fails: int = 0
    cool_until: float = 0.0
    minute: int = -1
    requests: int = 0  # this minute
    tokens: int = 0  # this minute
    in_flight: int = 0
    latency_s: float | None = None  # moving average, to the answer or a stream's first piece

    def succeeded(self, seconds: float) -> None:
        self.fails = 0
        self.latency_s = seconds if self.latency_s is None else 0.8 * self.latency_s + 0.2 * seconds

    def use(self, minute: int) -> None:
        if self.minute != minute:
            self.minute, self.requests, self.tokens = minute, 0, 0


@dataclass(eq=False)
class Slot:
    """One concrete deployment as the router holds it."""

    deployment: Deployment
    health: Health = field(default_factory=Health)
    defaults: Json = field(default_factory=dict)  # litellm_params the request's own values override
    for_streams: Deployment | None = None  # the deployment with stream_timeout as its timeout

    @classmethod
    def of(cls, deployment: Deployment) -> Slot:
        params = deployment.litellm_params
        extra = params.extra_params()
        defaults = {
            k: v for k, v in extra.items() if k in CHAT_PARAMETERS and k != "messages" and v is not None
        }
        stream_timeout = number(extra.get("stream_timeout"))
        for_streams = None
        if stream_timeout:
            for_streams = deployment.model_copy(
                update={"litellm_params": params.model_copy(update={"timeout": stream_timeout})}
            )
        return cls(deployment, defaults=defaults, for_streams=for_streams)

    def limit(self, name: str) -> float | None:
        return number(self.deployment.litellm_params.setting(name))

    @property
    def order(self) -> float:
        return number(self.deployment.litellm_params.setting("order")) or math.inf

    @property
    def own_retries(self) -> int | None:
        params = self.deployment.litellm_params
        value = number(params.setting("num_retries"))
        value = value if value is not None else number(params.setting("max_retries"))
        return int(value) if value is not None else None

    def over_limit(self, minute: int) -> bool:
        self.health.use(minute)
        rpm, tpm = self.limit("rpm"), self.limit("tpm")
        return (rpm is not None and self.health.requests >= rpm) or (
            tpm is not None and self.health.tokens >= tpm
        )

    def body(self, body: Json) -> Json:
        """The request with this deployment's defaults under its own values (the request wins)."""
        if not self.defaults:
            return body
        defaults = dict(self.defaults)
        if "max_completion_tokens" in body or "max_tokens" in body:  # one limit, the client's
            defaults.pop("max_tokens", None)
            defaults.pop("max_completion_tokens", None)
        return {**defaults, **body}


def number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).replace("_", ""))
    except ValueError:
        return None


@dataclass(frozen=True)
class Pattern:
    """A wildcard `model_name`: the requested name fills the star of `litellm_params.model`."""

    regex: re.Pattern[str]
    literal: int  # characters that are not a star: the more, the more specific
    name: str

    @classmethod
    def of(cls, name: str) -> Pattern:
        parts = [re.escape(p) for p in name.split("*")]
        regex = "(.+?)".join(parts[:-1]) + "(.+)" + parts[-1] if len(parts) > 1 else parts[0]
        return cls(re.compile(regex), len(name) - name.count("*"), name)


def fill(template: str, matched: Sequence[str]) -> str:
    pieces = template.split("*")
    if len(pieces) == 1:
        return template  # a fixed model behind a pattern name
    fills = list(matched) + [matched[-1]] * (len(pieces) - 1 - len(matched))
    out = pieces[0]
    for fill, piece in zip(fills, pieces[1:], strict=False):
        out += fill + piece
    return out


def allowed_fill(value: str) -> bool:
    return FILLABLE.fullmatch(value) is not None and ".." not in value and "//" not in value


def shuffled(slots: list[Slot]) -> list[Slot]:
    """LiteLLM's simple-shuffle as an order: drawn at random by `weight`, else by `rpm`, else by
    `tpm` (the first of these any deployment sets), else uniformly. Drawing the whole order at
    once (Efraimidis-Spirakis) gives the first pick exactly those odds and the fallbacks theirs."""
    for metric in ("weight", "rpm", "tpm"):
        weights = [max(s.limit(metric) or 0.0, 0.0) for s in slots]
        if max(weights) > 0:
            keyed = [(random.random() ** (1 / w) if w > 0 else -1.0, i) for i, w in enumerate(weights)]
            return [slots[i] for _, i in sorted(keyed, reverse=True)]
    shuffled = list(slots)
    random.shuffle(shuffled)
    return shuffled


def ranked(slots: list[Slot], strategy: str) -> list[Slot]:
    """One priority level, in the order the routing strategy would pick them."""
    if len(slots) < 2:
        return list(slots)
    if strategy == "least-busy":
        return sorted(slots, key=lambda s: (s.health.in_flight, random.random()))
    if strategy.startswith("usage-based-routing"):
        return sorted(slots, key=lambda s: (s.health.tokens, s.health.requests, random.random()))
    if strategy == "latency-based-routing":
        return sorted(slots, key=lambda s: (s.health.latency_s or 0.0, random.random()))
    if strategy == "cost-based-routing":
        return sorted(slots, key=lambda s: (_price(s.deployment), random.random()))
    return shuffled(slots)


def _price(deployment: Deployment) -> float:
    prices = token_prices(deployment)
    return math.inf if prices is None else prices[0] + prices[1]


def cool(slot: Slot, exc: UpstreamError, settings: UpstreamSettings) -> None:
    """Count a failure; cool the deployment down (LiteLLM's rule) after more than
    `allowed_fails` in a row, at once on a 401/403/404, and on a 429 for its Retry-After."""
    health, cooldown = slot.health, settings.cooldown_s
    health.fails += 1
    if cooldown <= 0:
        return
    now = time.monotonic()
    if exc.status == 429:
        until = now + (exc.retry_after if exc.retry_after is not None else cooldown)
    elif exc.status in (401, 403, 404) or health.fails > settings.allowed_fails:
        until = now + cooldown
    else:
        return
    if until > health.cool_until:
        deployment = slot.deployment
        log.warning(
            "%s (%s) cools down for %.1f s after a %s",
            deployment.model_name, deployment.litellm_params.model, until - now, exc.status,
        )  # fmt: skip
    health.cool_until = max(health.cool_until, until)
    health.fails = settings.allowed_fails  # after the cooldown, one more failure cools it again


def backoff(retry: int, last: UpstreamError | None, settings: UpstreamSettings) -> float:
    """Before a retry: the provider's Retry-After, else exponential backoff with full jitter."""
    if last is not None and last.retry_after is not None:
        return last.retry_after
    ceiling = min(settings.max_backoff_s, settings.retry_backoff_s * 2 ** (retry - 1))
    return random.uniform(0, ceiling) if ceiling > 0 else 0.0


def count_tokens(slot: Slot, usage: Any) -> None:
    if isinstance(usage, dict) and isinstance(usage.get("total_tokens"), int):
        slot.health.tokens += usage["total_tokens"]


async def counted(slot: Slot, stream: AsyncGenerator[Piece, None]) -> AsyncGenerator[Piece, None]:
    """The stream as it is, counting the usage its chunks report against the tpm limit."""
    try:
        async for piece in stream:
            for chunk in piece.chunks:
                count_tokens(slot, chunk.get("usage"))
            yield piece
    finally:
        await stream.aclose()
