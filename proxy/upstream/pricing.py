"""What an answer cost, in USD: the operator's prices for a deployment (`input_cost_per_token`,
`output_cost_per_token` in `model_info` or `litellm_params`), else litellm's bundled price map,
read as a JSON file without importing litellm (which takes seconds), once, on first use."""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

from proxy.settings import Deployment

log = logging.getLogger("loopwise.upstream")
PRICE_MAP = "model_prices_and_context_window_backup.json"


@functools.cache
def price_map() -> dict[str, dict[str, Any]]:
    """litellm's bundled price map (model -> costs), or empty when litellm is not installed."""
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / PRICE_MAP
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(loaded, dict):
            return {k: v for k, v in loaded.items() if isinstance(v, dict)}
    log.info("litellm's price map was not found: costs only for deployments that set their prices")
    return {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _operator_price(deployment: Deployment, name: str) -> float | None:
    for source in (deployment.model_info, deployment.litellm_params.extra_params()):
        found = _number(source.get(name))
        if found is not None:
            return found
    return None


def map_entry(deployment: Deployment) -> dict[str, Any] | None:
    """The price map's entry for a deployment, keyed as litellm keys it: the full
    `provider/model`, then the provider's own model name (when the entry is that provider's),
    then a `base_model` the operator named."""
    prices = price_map()
    params = deployment.litellm_params
    provider, bare = deployment.provider, deployment.provider_model
    for key in (params.model, f"{provider}/{bare}" if provider else None):
        if key and key in prices:
            return prices[key]
    entry = prices.get(bare)
    if entry is not None and (
        not provider or entry.get("litellm_provider") in (provider, None) or provider == "openai"
    ):
        return entry
    for base in (deployment.model_info.get("base_model"), params.setting("base_model")):
        if isinstance(base, str) and base in prices:
            return prices[base]
    return None


def token_prices(deployment: Deployment) -> tuple[float, float] | None:
    """(input, output) USD per token: the operator's, else the price map's; None if unknown."""
    given_in = _operator_price(deployment, "input_cost_per_token")
    given_out = _operator_price(deployment, "output_cost_per_token")
    if given_in is not None and given_out is not None:
        return given_in, given_out
    entry = map_entry(deployment) or {}
    mapped_in, mapped_out = (
        _number(entry.get("input_cost_per_token")),
        _number(entry.get("output_cost_per_token")),
    )
    price_in = given_in if given_in is not None else mapped_in
    price_out = given_out if given_out is not None else mapped_out
    if price_in is None and price_out is None:
        return None
    return price_in or 0.0, price_out or 0.0


Prices = tuple[float, float, float | None]  # input, output, cache read: USD per token
_KNOWN: dict[int, tuple[Deployment, Prices | None]] = {}  # by deployment: they live as long as the router
MAX_KNOWN = 4096


def _prices(deployment: Deployment) -> Prices | None:
    """A deployment's prices, worked out once (every answer is priced on the request path)."""
    known = _KNOWN.get(id(deployment))
    if known is not None and known[0] is deployment:
        return known[1]
    prices = token_prices(deployment)
    cache = _operator_price(deployment, "cache_read_input_token_cost")
    if cache is None:
        cache = _number((map_entry(deployment) or {}).get("cache_read_input_token_cost"))
    found = None if prices is None else (*prices, cache)
    if len(_KNOWN) >= MAX_KNOWN:
        _KNOWN.clear()
    _KNOWN[id(deployment)] = (deployment, found)  # held, so its id is not reused meanwhile
    return found


def cost_usd(deployment: Deployment, usage: dict[str, Any] | None) -> float | None:
    """The cost of one answer from its `usage`; None when the usage or the prices are unknown.
    Cached prompt tokens are priced at the cache-read rate when one is known."""
    if not isinstance(usage, dict):
        return None
    prompt = _number(usage.get("prompt_tokens")) or 0.0
    completion = _number(usage.get("completion_tokens")) or 0.0
    if not prompt and not completion:
        return None
    prices = _prices(deployment)
    if prices is None:
        return None
    price_in, price_out, cache_price = prices
    details = usage.get("prompt_tokens_details")
    cached = _number(details.get("cached_tokens")) if isinstance(details, dict) else None
    if cached and cache_price is not None:
        cached = min(cached, prompt)
        return (prompt - cached) * price_in + cached * cache_price + completion * price_out
    return prompt * price_in + completion * price_out
