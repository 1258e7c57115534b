"""Upstream providers: one adapter interface, two adapters, a router with retries and fallbacks."""

from proxy.upstream.adapters import Adapters
from proxy.upstream.base import Adapter, Answer, Piece
from proxy.upstream.pricing import cost_usd
from proxy.upstream.router import Opened, Router

__all__ = ["Adapter", "Adapters", "Answer", "Opened", "Piece", "Router", "cost_usd"]
