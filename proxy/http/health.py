"""Liveness, readiness (with the policy reload state) and the model list."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from proxy.http.access import authorize
from proxy.http.common import json_response, services
from proxy.learning.index import LessonIndex


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    svc = services(request)
    policies = svc.policies
    checks: dict[str, dict[str, Any]] = {
        "policies": {
            "status": "degraded" if policies.error else "ok",
            "version": policies.current.version,
            "names": [p.name for p in policies.current.policies],
            "error": policies.error,
        },
        "embedding": {"status": "ok", "model": svc.embedder.model_id, "dims": svc.embedder.dims},
        "vector_index": {
            "status": "degraded" if svc.index.sync_error else "ok",
            "error": svc.index.sync_error,
        },
        "vector_graph": _graph(svc.index),
        "recall_gate": _gate(svc.index),
        "trail": {
            "status": "degraded" if svc.db.writes_failing() else "ok",
            "write_errors": svc.db.write_errors,
        },
    }
    degraded = any(c["status"] != "ok" for c in checks.values())
    return json_response({"status": "degraded" if degraded else "ready", "checks": checks})


def _graph(index: LessonIndex) -> dict[str, Any]:
    """The embedded index's background graph build: a failed one leaves searches slower (they
    scan the lessons outside the graph), never wrong."""
    graph = index.graph
    return {
        "status": "degraded" if graph.error else "ok",
        "state": graph.state,
        "last_build": graph.last,
        "error": graph.error,
    }


def _gate(index: LessonIndex) -> dict[str, Any]:
    """Recall's cheap stage: `building` until it holds every lesson (recall runs the model on
    every turn meanwhile), `off` for a model with no static table; neither degrades the proxy."""
    return {"status": "ok", "state": index.gate_state, "error": index.gate_error}


def _model(name: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": "loopwise"}


async def list_models(request: Request) -> Response:
    svc = services(request)
    authorize(request, "chat")
    created = int(time.time())
    return json_response({"object": "list", "data": [_model(n, created) for n in svc.router.model_names()]})


async def get_model(request: Request) -> Response:
    """One model by name (a wildcard entry answers for every name it covers), or a 404."""
    svc = services(request)
    authorize(request, "chat")
    name = request.path_params["model_id"]
    svc.router.deployments(name)  # the 404 that names the available models
    return json_response(_model(name, int(time.time())))
