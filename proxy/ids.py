"""Identifiers: the interaction id is the response `id` clients send back with feedback."""

from __future__ import annotations

import uuid


def interaction_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def feedback_id() -> str:
    return f"fb-{uuid.uuid4().hex}"


def lesson_id() -> str:
    """A UUID string: the vector index uses it as the point id."""
    return str(uuid.uuid4())
