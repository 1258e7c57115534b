"""Upstream providers: one adapter interface, two adapters, a router with retries and fallbacks."""

from proxy.upstream.base import Adapter, Answer, Piece, UpstreamError
from proxy.upstream.router import Router

__all__ = ["Adapter", "Answer", "Piece", "Router", "UpstreamError"]
