"""The console at /ui: pages for the people in the loop, rendered on the server from the same
storage and report functions the JSON routes use, behind the same keys and scopes."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from proxy.http.console import explain, keys, lessons, report, signin, traffic, trail, users


async def home(request: Request) -> Response:
    return RedirectResponse("/ui/traffic", status_code=303)


PAGES = [  # (path, endpoint, method, scope): the scope each needs, for the docs and the tests
    ("/ui/traffic", traffic.traffic_page, "GET", "read"),
    ("/ui/sessions/{session_id:path}", trail.session_page, "GET", "read"),
    ("/ui/interactions/{interaction_id}", trail.interaction_page, "GET", "read"),
    ("/ui/interactions/{interaction_id}/feedback", trail.teach, "POST", "review"),
    ("/ui/review", lessons.review_page, "GET", "read"),
    ("/ui/lessons", lessons.lessons_page, "GET", "read"),
    ("/ui/lessons/{lesson_id}", lessons.lesson_page, "GET", "read"),
    ("/ui/lessons/{lesson_id}/{action}", lessons.lesson_action, "POST", "review"),
    ("/ui/report", report.report_page, "GET", "read"),
    ("/ui/explain", explain.explain_page, "GET", "read"),
    ("/ui/users/{user_id}", users.user_page, "GET", "read"),
    ("/ui/users/{user_id}/preferences/{dimension}/forget", users.forget, "POST", "admin"),
    ("/ui/keys", keys.keys_page, "GET", "admin"),
    ("/ui/keys", keys.create_key, "POST", "admin"),
    ("/ui/keys/{key_id}/revoke", keys.revoke, "POST", "admin"),
]
ROUTES: list[BaseRoute] = [
    Route("/ui", home, methods=["GET"]),
    Route("/ui/login", signin.login_page, methods=["GET"]),
    Route("/ui/login", signin.login, methods=["POST"]),
    Route("/ui/logout", signin.logout, methods=["POST"]),
    *(Route(path, endpoint, methods=[method]) for path, endpoint, method, _ in PAGES),
    Mount("/ui/static", StaticFiles(directory=Path(__file__).parent / "static"), name="console-static"),
]
