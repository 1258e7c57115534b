"""Upstream providers: one adapter interface, a router with retries and fallbacks."""

from proxy.upstream.base import Adapter, UpstreamError
from proxy.upstream.router import Router

__all__ = ["Adapter", "Router", "UpstreamError"]
