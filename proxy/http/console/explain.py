"""Explain: a question (with app, role, model) in, the policy, the recalled lessons with their
scores and the exact messages that would go upstream out. The same pipeline as a call, without
the provider call (and without a trail row)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from proxy.access.principal import Principal
from proxy.chat.pipeline import explain_body, explanation, plan
from proxy.chat.request import identify, validate_chat
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
        validate_chat(body)
        headers = {
            "x-app": asked["app"], "x-user-role": asked["role"], "x-user-id": asked["user"],
            "x-tenant-id": asked["tenant"],
        }  # fmt: skip
        identity = identify(
            {k: v for k, v in headers.items() if v}, body, principal, svc.settings.access.trusted_roles
        )
        planned = await plan(svc.policies.current, svc.embedder, svc.index, body, identity)
        result = explanation(planned, identity)
        messages = sent_messages(body["messages"], planned.messages)
    return page(request, "explain.html", asked=asked, models=models, result=result, messages=messages)
