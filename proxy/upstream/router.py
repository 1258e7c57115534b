"""model_name -> deployments (wildcards, aliases), picked as LiteLLM's router picks them, each
called through one of the two adapters, with budgeted retries, cooldowns and fallbacks."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from proxy.errors import ApiError, UpstreamError
from proxy.settings import Deployment, UpstreamSettings
from proxy.upstream.base import CHAT, Adapter, Answer, Json, Piece
from proxy.upstream.routing import (
    Pattern,
    RetryBudget,
    Slot,
    allowed_fill,
    backoff,
    cool,
    count_tokens,
    counted,
    fill,
    ranked,
)

log = logging.getLogger("loopwise.upstream")
T = TypeVar("T")
ATTEMPTS_HEADER = "X-Loopwise-Attempts"
MAX_MODEL_NAME = 256  # the longest model name a wildcard entry is matched against
# Failures that say the deployment is broken or misconfigured, not the request: fall back.
DEPLOYMENT_FAILURES = frozenset({401, 403, 404, 408, 429})
MAX_FILLED = 512  # concrete deployments kept for wildcard names (each has its own health)


@dataclass(frozen=True)
class Opened:
    """A stream whose first chunk has arrived: retries are over from here on."""

    first: Piece | None
    rest: AsyncGenerator[Piece, None]
    deployment: Deployment
    attempts: int = 1  # provider calls made to open it


class Router:
    """Picks deployments by `model_name`; `adapter_for` picks how each one is called."""

    def __init__(
        self,
        model_list: Sequence[Deployment],
        adapter_for: Callable[[Deployment], Adapter],
        settings: UpstreamSettings,
    ) -> None:
        self.adapter_for = adapter_for
        self.settings = settings
        self.budget = RetryBudget(
            settings.retry_budget_ratio, settings.retry_budget_min, settings.retry_budget_window_s
        )
        self._by_name: dict[str, list[Slot]] = {}
        self._patterns: dict[str, Pattern] = {}
        for deployment in model_list:
            self._by_name.setdefault(deployment.model_name, []).append(Slot.of(deployment))
            if deployment.is_pattern and deployment.model_name not in self._patterns:
                self._patterns[deployment.model_name] = Pattern.of(deployment.model_name)
        self._ranked = sorted(self._patterns.values(), key=lambda p: -p.literal)
        self._plain = {name: slots for name, slots in self._by_name.items() if name not in self._patterns}
        self._filled: OrderedDict[str, list[Slot]] = OrderedDict()
        self.path = CHAT  # litellm_params defaults (temperature, ...) go under chat bodies only

    def on_path(self, path: str) -> Router:
        """The same deployments and state, called on another OpenAI path (`completions`,
        `embeddings`) through the same adapters."""
        view = copy.copy(self)
        view.path = path
        return view

    def model_names(self) -> list[str]:
        aliases = [a for a in self.settings.model_group_alias if a not in self._by_name]
        return [*self._by_name, *aliases]

    def label(self, model: str) -> str:
        """A bounded name for metrics: a configured model or alias as asked; a name a wildcard
        entry covers, as that entry's pattern."""
        if model in self._by_name or model in self.settings.model_group_alias:
            return model
        if len(model) <= MAX_MODEL_NAME:
            for pattern in self._ranked:
                if pattern.regex.fullmatch(model):
                    return pattern.name
        return "unknown"

    def _not_found(self, model: str) -> ApiError:
        known = ", ".join(self.model_names()) or "none configured: add one to model_list"
        message = f"The model `{model}` does not exist on this proxy; available models: {known}"
        return ApiError(404, message, param="model", code="model_not_found")

    def _slots(self, model: str) -> list[Slot]:
        model = self.settings.model_group_alias.get(model, model)
        found = self._plain.get(model)  # a name no wildcard entry shares
        if found:
            return found
        filled = self._filled.get(model)
        if filled is not None:
            self._filled.move_to_end(model)
            return filled
        if len(model) > MAX_MODEL_NAME:  # bounded work: a pattern's regex backtracks on long names
            raise self._not_found(model[:MAX_MODEL_NAME] + "...")
        for pattern in self._ranked:
            match = pattern.regex.fullmatch(model)
            if match is None or not all(allowed_fill(g) for g in match.groups()):
                continue
            slots = []
            for slot in self._by_name[pattern.name]:
                params = slot.deployment.litellm_params
                concrete = fill(params.model, match.groups())
                update = {
                    "model_name": model,
                    "litellm_params": params.model_copy(update={"model": concrete}),
                }
                slots.append(Slot.of(slot.deployment.model_copy(update=update)))
            self._filled[model] = slots
            if len(self._filled) > MAX_FILLED:
                self._filled.popitem(last=False)
            return slots
        raise self._not_found(model)

    def deployments(self, model: str) -> list[Deployment]:
        """The concrete deployments a request for `model` may reach (404 if none)."""
        return [slot.deployment for slot in self._slots(model)]

    # --- picking ---------------------------------------------------------------------------

    def _plan(self, model: str) -> list[Slot]:
        """Every deployment this request may try, best first: healthy ones by priority (`order`)
        and strategy, then those cooling down (soonest back first), then the fallback models'.
        Deployments at their rpm/tpm limit this minute are left out."""
        minute = int(time.time() // 60)
        now = time.monotonic()
        plan: list[Slot] = []
        capped = False
        fallbacks, group = self.settings.fallbacks, self.settings.model_group_alias.get(model, model)
        names = [model, *fallbacks.get(group, fallbacks.get(model, fallbacks.get("*", ())))]
        if len(names) == 1:  # the common case, one healthy deployment, costs no planning
            only = self._slots(model)
            if len(only) == 1 and not only[0].over_limit(minute) and only[0].health.cool_until <= now:
                return only
        for index, name in enumerate(names):
            try:
                slots = self._slots(name)
            except ApiError:
                if index == 0:
                    raise
                continue  # a fallback naming an unknown model: skipped (config check says so)
            open_ = [s for s in slots if not s.over_limit(minute)]
            capped = capped or len(open_) < len(slots)
            healthy = [s for s in open_ if s.health.cool_until <= now]
            cooling = sorted(
                (s for s in open_ if s.health.cool_until > now), key=lambda s: s.health.cool_until
            )
            for order in sorted({s.order for s in healthy}):
                plan += ranked([s for s in healthy if s.order == order], self.settings.routing_strategy)
            plan += cooling
        seen: set[int] = set()
        plan = [s for s in plan if not (id(s) in seen or seen.add(id(s)))]  # type: ignore[func-returns-value]
        if not plan and capped:
            wait = 60 - time.time() % 60
            message = f"every deployment of `{model}` is at its rpm/tpm limit for this minute"
            raise UpstreamError(429, message, code="rate_limit_exceeded").wait(wait)
        return plan

    # --- calling ---------------------------------------------------------------------------

    async def _first_success(
        self, model: str, call: Callable[[Slot], Awaitable[T]], client_retry: int
    ) -> tuple[T, Slot, int]:
        """Each deployment of the plan once (fallbacks), then retries of those a retry may help,
        after backoff, while the retry budget, `num_retries` and `deadline_s` allow; none when
        the client is itself retrying. A Retry-After longer than `max_retry_after_s` is not
        waited out; the last error (with its Retry-After) reaches the client."""
        settings = self.settings
        plan = self._plan(model)
        self.budget.request()
        deadline = time.monotonic() + settings.deadline_s
        own = plan[0].own_retries if plan else None
        retries_left = 0 if client_retry > 0 else (own if own is not None else settings.num_retries)
        attempts, retried = 0, 0
        last: UpstreamError | None = None
        failed: dict[int, UpstreamError] = {}
        queue = list(plan)
        while True:
            if not queue:
                retryable = [
                    s for s in plan
                    if id(s) in failed and failed[id(s)].retryable
                    and (failed[id(s)].retry_after or 0) <= settings.max_retry_after_s
                ]  # fmt: skip
                if not retryable or retries_left <= 0:
                    break
                slot = retryable[retried % len(retryable)]
                wait = backoff(retried + 1, failed[id(slot)], self.settings)
                if time.monotonic() + wait >= deadline:
                    break
                if not self.budget.try_retry():
                    log.warning("%s: retry budget spent; not retrying", model)
                    break
                retries_left -= 1
                retried += 1
                await asyncio.sleep(wait)
                queue = [slot]
            slot = queue.pop(0)
            health = slot.health
            health.use(int(time.time() // 60))
            health.requests += 1
            health.in_flight += 1
            attempts += 1
            began = time.monotonic()
            try:
                async with asyncio.timeout(deadline - began):
                    result = await call(slot)
            except TimeoutError:
                message = f"no answer within upstream.deadline_s ({settings.deadline_s:g} s)"
                error = UpstreamError(504, message, type="timeout_error")
                error.headers[ATTEMPTS_HEADER] = str(attempts)
                raise error from None
            except UpstreamError as exc:
                exc.headers[ATTEMPTS_HEADER] = str(attempts)
                if not (exc.retryable or exc.status in DEPLOYMENT_FAILURES):
                    raise  # the request itself is wrong: no other deployment would take it
                log.warning("%s via %s failed (%s)", model, slot.deployment.litellm_params.model, exc)
                cool(slot, exc, self.settings)
                failed[id(slot)] = last = exc
                continue
            finally:
                health.in_flight -= 1
            slot.health.succeeded(time.monotonic() - began)
            return result, slot, attempts
        if last is None:
            raise self._not_found(model)
        raise last

    def _body(self, slot: Slot, body: Json) -> Json:
        return slot.body(body) if self.path == CHAT else body

    async def complete(self, model: str, body: Json, *, client_retry: int = 0) -> tuple[Answer, Deployment]:
        async def call(slot: Slot) -> Answer:
            adapter = self.adapter_for(slot.deployment)
            return await adapter.complete(slot.deployment, self._body(slot, body), self.path)

        answer, slot, attempts = await self._first_success(model, call, client_retry)
        answer.attempts = attempts
        count_tokens(slot, answer.data.get("usage"))
        return answer, slot.deployment

    async def open_stream(self, model: str, body: Json, *, client_retry: int = 0) -> Opened:
        """A stream whose first piece has arrived (or that ended empty)."""

        async def call(slot: Slot) -> tuple[Piece | None, AsyncGenerator[Piece, None], Deployment]:
            deployment = slot.for_streams or slot.deployment
            stream = self.adapter_for(deployment).stream(deployment, self._body(slot, body), self.path)
            try:
                first = await anext(stream, None)
            except BaseException:
                await stream.aclose()
                raise
            return first, stream, deployment

        (first, rest, deployment), slot, attempts = await self._first_success(model, call, client_retry)
        if first is not None:
            for chunk in first.chunks:
                count_tokens(slot, chunk.get("usage"))
        if slot.limit("tpm") is not None or self.settings.routing_strategy.startswith("usage"):
            rest = counted(slot, rest)
        return Opened(first, rest, deployment, attempts)
