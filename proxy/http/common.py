"""Helpers every route uses: JSON in and out, and the services of the running app."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from proxy.errors import ApiError, from_validation
from proxy.services import Services

M = TypeVar("M", bound=BaseModel)
MAX_BODY = 32 * 1024 * 1024


def services(request: Request) -> Services:
    found: Services = request.state.services
    return found


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers)


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body, refused with a 413 as soon as it is known to be over `limit`: from its declared
    length, or while it streams in, before more than `limit` bytes are held."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body over {limit} bytes", code="body_too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body over {limit} bytes", code="body_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, limit: int = MAX_BODY) -> dict[str, Any]:
    return decode_json(await read_body(request, limit))


def decode_json(raw: bytes) -> dict[str, Any]:
    """A JSON object, or a 400 that says what is wrong with it."""
    if not raw.strip():
        raise ApiError(400, "request body is empty; send a JSON object", code="invalid_json")
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "request body must be a JSON object", code="invalid_json")
    try:  # what cannot be encoded again (nested past orjson's 254 levels) can be neither
        orjson.dumps(parsed)  # forwarded nor recorded: refuse it at the door
    except orjson.JSONEncodeError as exc:
        raise ApiError(400, f"request body cannot be used: {exc}", code="invalid_json") from None
    return parsed


async def parse(request: Request, model: type[M], limit: int = MAX_BODY) -> M:
    return validated(await json_body(request, limit), model)


def validated(body: dict[str, Any], model: type[M]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise from_validation(exc) from None


def limit_param(request: Request, default: int = 50, maximum: int = 1000) -> int:
    raw = request.query_params.get("limit", str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"limit must be an integer, got {raw!r}", param="limit") from None
    if not 1 <= value <= maximum:
        raise ApiError(400, f"limit must be between 1 and {maximum}", param="limit")
    return value
