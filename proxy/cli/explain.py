"""`loopwise explain`: ask the running proxy (found through the address it leaves in its data
directory), or open the data directory itself when no proxy serves it."""

from __future__ import annotations

from typing import Any

import httpx

from proxy.chat.pipeline import explain_body, explanation, plan
from proxy.chat.request import identify, validate_chat
from proxy.cli.serve import find_running
from proxy.services import open_services
from proxy.settings import Settings, secret_value


class ExplainError(RuntimeError):
    """Nothing could answer; the message says what to run."""


async def _ask(base: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        response = await client.post("/v1/explain", json=body, headers=headers)
    if response.status_code != 200:
        raise ExplainError(f"{base} answered {response.status_code}: {response.text[:500]}")
    found: dict[str, Any] = response.json()
    return {**found, "via": base}


async def run_explain(
    settings: Settings,
    question: str,
    model: str | None,
    system: str | None,
    headers: dict[str, str],
    url: str | None,
) -> dict[str, Any]:
    """Ask, in order: `url`; the proxy serving this data directory; the configured host and port;
    and, when none answers, the data directory itself."""
    chosen = model or (settings.model_list[0].model_name if settings.model_list else "default")
    body = explain_body(question, chosen, system)
    master = secret_value(settings.access.master_key)
    if master:  # a proxy with keys answers the operator's own commands through the master key
        headers = {**headers, "Authorization": f"Bearer {master}"}
    running = find_running(settings.data_dir)
    if url or running:
        base = url or (running.url if running else "")
        try:
            return await _ask(base, body, headers)
        except httpx.TransportError as exc:
            hint = "check the address" if url else "is it still starting? Try again, or pass --url"
            raise ExplainError(f"cannot reach the proxy at {base} ({type(exc).__name__}); {hint}") from None
    configured = f"http://{settings.host}:{settings.port}"
    try:
        return await _ask(configured, body, headers)
    except httpx.TransportError:
        pass  # nothing listens there: look at the data directory itself
    if not settings.shared_database and not settings.db_path.exists():
        raise ExplainError(
            f"no proxy answers at {configured} and {settings.data_dir} holds no trail yet; start one "
            "with `loopwise serve`, or pass --config / --data-dir for the proxy you mean"
        )
    validate_chat(body)
    identity = identify(headers, body)
    try:
        async with open_services(settings, background=False) as svc:
            planned = await plan(svc.policies.current, svc.embedder, svc.index, body, identity, svc.profiles)
            return {**explanation(planned, identity), "via": str(settings.data_dir)}
    except RuntimeError as exc:
        if "vector index" not in str(exc):
            raise
        raise ExplainError(
            f"{exc}\nNo running proxy left its address in {settings.data_dir}. If `loopwise serve` "
            "runs there, pass its address with --url http://HOST:PORT; otherwise stop the process "
            "that holds the index"
        ) from None
