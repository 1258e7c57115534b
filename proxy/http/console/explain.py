"""Explain: a question (with app, role, model) in, the policy, the recalled lessons with their
scores and the exact messages that would go upstream out. The same pipeline as a call, without
the provider call (and without a trail row)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from proxy.access.principal import Principal
from proxy.chat.pipeline import explain_body
from proxy.http.chat import explain
from proxy.http.common import services
from proxy.http.console.auth import console
from proxy.http.console.render import page
from proxy.http.console.turns import sent_messages

FIELDS = ("q", "app", "role", "model", "user", "tenant", "system")


@console("read")
async def explain_page(request: Request, principal: Principal) -> Response:
    svc = services(request)
    asked = {name: request.query_params.get(name, "").strip()[:8000] for name in FIELDS}
    models = svc.router.model_names()
    asked["model"] = asked["model"] or (models[0] if models else "")
    result, messages = None, []
    if asked["q"]:
        svc.router.deployments(asked["model"])  # an unknown model: the 404 naming the known ones
        body = explain_body(asked["q"], asked["model"], asked["system"] or None)
        headers = {
            "x-app": asked["app"], "x-user-role": asked["role"], "x-user-id": asked["user"],
            "x-tenant-id": asked["tenant"],
        }  # fmt: skip
        result = await explain(svc, principal, {k: v for k, v in headers.items() if v}, body)
        messages = sent_messages(body["messages"], result["messages"])
    return page(request, "explain.html", asked=asked, models=models, result=result, messages=messages)
