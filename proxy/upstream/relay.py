"""The byte relay for OpenAI-compatible providers: JSON out, the provider's bytes back.

The request body goes out with only the model and messages rewritten; the answer, or each
stream event, comes back as the provider's own bytes while `SseReader` parses the events for the
trail. One pooled aiohttp session: its C HTTP parser costs a fraction of httpx per request.
"""

from __future__ import annotations

import io
import os
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass

import aiohttp
import orjson

from proxy.errors import UpstreamError
from proxy.settings import OPENAI_BASE, Deployment, UpstreamSettings
from proxy.upstream.base import CHAT, Answer, Json, Piece, from_status, passed_headers
from proxy.upstream.sse import SseReader

OWN_FIELDS = frozenset({"model", "stream", "metadata"})  # Loopwise reads these itself
MAX_CONNECTIONS = 1024
LARGE_BODY = 1 << 20  # aiohttp's own threshold for warning about raw bytes


def _timed_out(seconds: float) -> UpstreamError:
    return UpstreamError(504, f"provider timed out after {seconds:g} s", type="timeout_error")


def _unreachable(exc: aiohttp.ClientError) -> UpstreamError:
    return UpstreamError(502, f"could not reach the provider: {type(exc).__name__}: {exc}")


def _body(payload: bytes) -> bytes | io.BytesIO:
    """Large bodies go out in chunks (aiohttp writes raw bytes in one piece, blocking the loop)."""
    return io.BytesIO(payload) if len(payload) > LARGE_BODY else payload


def _answer_shaped(data: Json, path: str) -> bool:
    """Whether a 200 holds what the trail and the client read: `data` for embeddings, else
    `choices`, objects whose `message` (if any) is an object."""
    if path == "embeddings":
        return isinstance(data.get("data"), list)
    choices = data.get("choices")
    return isinstance(choices, list) and all(
        isinstance(c, dict) and isinstance(c.get("message", {}), dict | None) for c in choices
    )


class RelayAdapter:
    def __init__(self, settings: UpstreamSettings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    def _proxy_for(self, url: str) -> str | None:
        """The proxy HTTP(S)_PROXY and NO_PROXY name for a provider URL, as litellm's httpx
        client honours them; looked up once per provider host. (aiohttp's own `trust_env`
        reads ~/.netrc and the environment again on every request: a quarter of the relay's
        CPU, measured.)"""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if key not in self._proxies:
            bypass = parts.hostname is not None and proxy_bypass(parts.hostname)
            self._proxies[key] = None if bypass else getproxies_environment().get(parts.scheme)
        return self._proxies[key]

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:  # made lazily: it needs a running loop
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, ttl_dns_cache=300)
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _read_timeout(self, deployment: Deployment) -> float:
        return deployment.litellm_params.timeout or self._settings.timeout_s

    def _request(
        self, deployment: Deployment, body: Json, stream: bool, path: str
    ) -> tuple[str, dict[str, str], bytes]:
        params = deployment.litellm_params
        base = params.api_base or os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE
        headers = {"Content-Type": "application/json"}
        try:
            key = params.resolved_api_key()
        except LookupError as exc:
            raise UpstreamError(500, str(exc), type="configuration_error") from None
        if key is None and deployment.provider == "openai":
            key = os.environ.get("OPENAI_API_KEY")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        extra: Any = params.extra_params().get("extra_headers")
        if isinstance(extra, dict):
            headers.update({str(k): str(v) for k, v in extra.items()})
        out = {k: v for k, v in body.items() if k not in OWN_FIELDS}
        out["model"] = deployment.provider_model
        if stream:
            out["stream"] = True
        return f"{base.rstrip('/')}/{path}", headers, orjson.dumps(out)

    async def complete(self, deployment: Deployment, body: Json, path: str = CHAT) -> Answer:
        url, headers, payload = self._request(deployment, body, False, path)
        seconds = self._read_timeout(deployment)
        timeout = aiohttp.ClientTimeout(total=seconds, sock_connect=self._settings.connect_timeout_s)
        try:
            post = self._client().post(
                url, data=_body(payload), headers=headers, timeout=timeout, proxy=self._proxy_for(url)
            )
            async with post as response:
                raw = await response.read()
                status, given = response.status, response.headers
        except TimeoutError:
            raise _timed_out(seconds) from None
        except aiohttp.ClientError as exc:
            raise _unreachable(exc) from exc
        if status >= 400:
            raise from_status(status, raw, given)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(502, f"provider answered with invalid JSON: {raw[:200]!r}") from None
        if not isinstance(data, dict) or not _answer_shaped(data, path):
            raise UpstreamError(502, f"provider answered 200 with no {path} answer in it: {raw[:200]!r}")
        return Answer(data, raw, passed_headers(given))

    async def stream(
        self, deployment: Deployment, body: Json, path: str = CHAT
    ) -> AsyncGenerator[Piece, None]:
        url, headers, payload = self._request(deployment, body, True, path)
        seconds = self._read_timeout(deployment)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._settings.connect_timeout_s, sock_read=seconds
        )
        try:
            response = await self._client().post(
                url, data=_body(payload), headers=headers, timeout=timeout, proxy=self._proxy_for(url)
            )
        except TimeoutError:
            raise _timed_out(seconds) from None
        except aiohttp.ClientError as exc:
            raise _unreachable(exc) from exc
        finished = False
        try:
            if response.status >= 400:
                raise from_status(response.status, await response.read(), response.headers)
            reader = SseReader()
            headers_left = passed_headers(response.headers) or None  # they go with the first piece
            async for data in response.content.iter_any():
                piece = reader.feed(data)
                if piece is not None:
                    piece.headers, headers_left = headers_left, None
                    yield piece
                if reader.done:
                    break
            last = reader.close()
            if last is not None:
                yield last
            finished = True
        except TimeoutError:
            raise _timed_out(seconds) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(502, f"provider stream broke: {type(exc).__name__}: {exc}") from exc
        finally:
            if finished:
                response.release()  # back to the pool
            else:
                response.close()  # abandoned or failed: drop the connection, the provider stops
