"""Who is asking: session, user, role and app, from headers first, then the body."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_APP = "default"


@dataclass(frozen=True)
class Identity:
    session_id: str | None
    user_id: str | None
    user_role: str | None
    app: str
    tenant: str | None
    metadata: Mapping[str, Any]


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text[:256] or None


def identify(headers: Mapping[str, str], body: Mapping[str, Any]) -> Identity:
    raw_metadata = body.get("metadata")
    metadata: Mapping[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    return Identity(
        session_id=_clean(headers.get("x-session-id") or metadata.get("session_id")),
        user_id=_clean(headers.get("x-user-id") or body.get("user") or metadata.get("user_id")),
        user_role=_clean(headers.get("x-user-role") or metadata.get("user_role")),
        app=_clean(headers.get("x-app") or metadata.get("app")) or DEFAULT_APP,
        tenant=_clean(headers.get("x-tenant-id") or metadata.get("tenant")),
        metadata=metadata,
    )
