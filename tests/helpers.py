"""Small request helpers shared by tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from policies import shipped_policies_dir


async def ask(
    client: httpx.AsyncClient,
    question: str,
    *,
    app: str = "shop",
    session: str | None = "s-1",
    stream: bool = False,
    model: str = "gpt-test",
    **extra: Any,
) -> httpx.Response:
    headers = {"X-App": app}
    if session:
        headers["X-Session-Id"] = session
    body = {"model": model, "messages": [{"role": "user", "content": question}], **extra}
    if stream:
        body["stream"] = True
    return await client.post("/v1/chat/completions", json=body, headers=headers)


async def feedback(client: httpx.AsyncClient, interaction_id: str, **fields: Any) -> httpx.Response:
    return await client.post("/v1/feedback", json={"interaction_id": interaction_id, **fields})


def assert_error_shape(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


@contextmanager
def on_a_socket(app: Any) -> Iterator[str]:
    """Serve an ASGI app (lifespan included) on a real 127.0.0.1 socket in a thread; yields its URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        threading.Event().wait(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stored_bytes(settings: Any) -> bytes:
    """Everything the trail DB holds, as bytes: SQLite's files, or each PostgreSQL table's rows."""
    if not settings.shared_database:
        return b"".join(p.read_bytes() for p in settings.data_dir.glob("trail.db*"))
    from proxy.storage.db import connect

    conn = connect(settings.database, readonly=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        rows = [str(r[0]) for t in tables for r in conn.execute(f"SELECT t::text FROM {t} t")]
        return "\n".join(rows).encode()
    finally:
        conn.close()


def per_user_policies(tmp_path: Path) -> str:
    """A policies folder: the shipped default with recall per user (`scope: user`)."""
    folder = tmp_path / "policies"
    folder.mkdir()
    spec = yaml.safe_load((shipped_policies_dir() / "default.yaml").read_text())
    spec["policies"][0]["recall"]["scope"] = "user"
    (folder / "default.yaml").write_text(yaml.safe_dump(spec))
    return str(folder)
