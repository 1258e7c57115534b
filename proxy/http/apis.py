"""POST /v1/responses and POST /v1/messages: OpenAI's Responses API and Anthropic's Messages API,
translated to chat so that recall, injection, the trail and feedback work as for chat."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from proxy.chat.apis import messages_answer, messages_request, responses_answer, responses_request
from proxy.chat.forward import Writer
from proxy.chat.request import client_fields, validate_chat
from proxy.http.access import authorize
from proxy.http.chat import run_turn
from proxy.http.common import json_body


async def _translated(
    request: Request,
    to_chat: Callable[[dict[str, Any]], dict[str, Any]],
    writer: Callable[[dict[str, Any], str], Writer],
    endpoint: str,
    prefix: str,
) -> Response:
    principal = authorize(request, "chat")
    body = client_fields(await json_body(request))
    chat = to_chat(body)
    validate_chat(chat)
    return await run_turn(
        request,
        principal,
        chat,
        endpoint=endpoint,
        id_prefix=prefix,
        client_body=body,
        writer_for=lambda turn_id: writer(body, turn_id),
    )


async def responses(request: Request) -> Response:
    return await _translated(
        request, responses_request.to_chat, responses_answer.Responses, "responses", "resp_"
    )


async def messages(request: Request) -> Response:
    return await _translated(request, messages_request.to_chat, messages_answer.Messages, "messages", "msg_")
