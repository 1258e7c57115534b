"""`loopwise explain`: ask the running proxy, or open the data directory when none runs."""

from __future__ import annotations

from typing import Any

import httpx

from proxy.chat.pipeline import explain_body, explanation, plan
from proxy.chat.request import identify, validate_chat
from proxy.services import open_services
from proxy.settings import Settings


async def run_explain(
    settings: Settings,
    question: str,
    model: str | None,
    system: str | None,
    headers: dict[str, str],
    url: str | None,
) -> dict[str, Any]:
    chosen = model or (settings.model_list[0].model_name if settings.model_list else "default")
    body = explain_body(question, chosen, system)
    base = url or f"http://{settings.host}:{settings.port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            response = await client.post("/v1/explain", json=body, headers=headers)
            response.raise_for_status()
            found: dict[str, Any] = response.json()
            found["via"] = base
            return found
    except httpx.ConnectError:
        if url is not None:
            raise
    validate_chat(body)
    identity = identify(headers, body)
    async with open_services(settings, background=False) as svc:
        planned = await plan(svc.policies.current, svc.embedder, svc.index, body, identity)
        return {**explanation(planned, identity), "via": str(settings.data_dir)}
