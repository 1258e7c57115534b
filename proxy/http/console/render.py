"""Pages rendered on the server with Jinja2 (autoescaped: every value a client sent is data), and
the headers every console page carries: no framing, no script but our own file, no caching."""

from __future__ import annotations

import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def _usd(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}" if value >= 0.0001 else f"${value:.6f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


ENV = Environment(
    loader=PackageLoader("proxy.http.console", "templates"),
    autoescape=select_autoescape(("html",), default=True),
    undefined=StrictUndefined,  # a misspelt name fails the test that renders the page
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(when=_when, ms=_ms, usd=_usd, percent=_percent)


def page(request: Request, template: str, http_status: int = 200, **context: Any) -> HTMLResponse:
    """A console page: `context` plus who is signed in (`me`) and the form token (`form_token`),
    both set by the sign-in check."""
    state = request.state
    html = ENV.get_template(template).render(
        me=getattr(state, "console_me", None),
        form_token=getattr(state, "form_token", ""),
        path=request.url.path,
        **context,
    )
    return HTMLResponse(html, status_code=http_status, headers=HEADERS)
