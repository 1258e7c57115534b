"""`loopwise serve`, and the address it leaves in the data directory (`proxy.json`) so that the
other commands (`explain`, `index optimize`) find the running proxy whatever its port."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer

from proxy.cli.options import ConfigOption, DataDirOption, settings_or_exit

ADDRESS_FILE = "proxy.json"


@dataclass(frozen=True)
class Running:
    url: str
    pid: int
    started_at: float


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def find_running(data_dir: Path) -> Running | None:
    """The proxy serving this data directory, or None (none ever did, or it has stopped)."""
    try:
        found = Running(**json.loads((data_dir / ADDRESS_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return found if _alive(found.pid) else None


def local_url(host: str, port: int) -> str:
    """How a command on this machine reaches a proxy bound to `host`."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def announce(data_dir: Path, url: str) -> None:
    """Leave the address in the data directory (atomically: a reader never sees half of it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = data_dir / f".{ADDRESS_FILE}.{os.getpid()}"
    partial.write_text(json.dumps(asdict(Running(url, os.getpid(), time.time()))))
    os.replace(partial, data_dir / ADDRESS_FILE)


def withdraw(data_dir: Path) -> None:
    """Remove the address, unless another proxy has taken the data directory since."""
    mine = find_running(data_dir)
    if mine is None or mine.pid == os.getpid():
        (data_dir / ADDRESS_FILE).unlink(missing_ok=True)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        typer.secho(f"error: cannot listen on {host}:{port}: {exc.strerror}", fg="red", err=True)
        raise typer.Exit(1) from None
    sock.listen(2048)  # connections queue from here on, while the proxy starts
    return sock


def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="overrides host")] = None,
    port: Annotated[int | None, typer.Option(help="overrides port (0: any free port)")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run the proxy."""
    settings = settings_or_exit(config, host=host, port=port, data_dir=data_dir)
    import uvicorn

    from proxy.app import create_app

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not settings.model_list:
        typer.secho(
            "warning: model_list is empty; add a model (see config.example.yaml)", fg="yellow", err=True
        )
    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # here, not after run(): uvicorn re-raises SIGTERM once serving ends
            withdraw(settings.data_dir)
            await super().shutdown(sockets)

    sock = _bind(settings.host, settings.port)
    url = local_url(settings.host, sock.getsockname()[1])
    app = create_app(settings)
    server = Server(uvicorn.Config(app, log_level=settings.log_level.lower(), access_log=False))
    announce(settings.data_dir, url)
    typer.secho(f"loopwise listening on {url}", err=True)
    try:
        server.run(sockets=[sock])
    finally:
        withdraw(settings.data_dir)
