"""`loopwise serve`, and the address it leaves in the data directory so that the other commands
(`explain`, `index optimize`) find the running proxy whatever its port.

`proxy.json` holds the address; `proxy.lock` is held (flock) for as long as the proxy runs, so a
file left by a killed proxy is recognised as stale by whoever finds it, pid reuse or not.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import logging.handlers
import os
import queue
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Annotated

import typer

from proxy.cli.config import problems
from proxy.cli.options import ConfigOption, DataDirOption, fail, fail_all, settings_or_exit
from proxy.settings import Settings, secret_value
from proxy.storage import TrailRepo
from proxy.storage.db import DatabaseError, connect
from proxy.storage.keys import active_keys

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; an address file is then trusted as it is
    fcntl = None  # type: ignore[assignment]

ADDRESS_FILE = "proxy.json"
LOCK_FILE = "proxy.lock"


@dataclass(frozen=True)
class Running:
    url: str
    pid: int
    started_at: float


def _held(lock: Path) -> bool:
    """Whether a running proxy holds the lock (a proxy killed in any way has released it)."""
    if fcntl is None:
        return True
    try:
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def find_running(data_dir: Path) -> Running | None:
    """The proxy serving this data directory, or None (none ever did, or it has stopped)."""
    try:
        found = Running(**json.loads((data_dir / ADDRESS_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return found if _held(data_dir / LOCK_FILE) else None


def local_url(host: str, port: int) -> str:
    """How a command on this machine reaches a proxy bound to `host`."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def hold_lock(data_dir: Path) -> IO[str]:
    """Take the data directory's lock for this process's lifetime, or exit naming the holder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / LOCK_FILE).open("a")
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            other = find_running(data_dir)
            where = f" (pid {other.pid}, {other.url})" if other else ""
            fail(
                f"another proxy{where} already serves {data_dir}; stop it, or give this one "
                "its own --data-dir"
            )
    return handle


def announce(data_dir: Path, url: str) -> None:
    """Leave the address in the data directory (atomically: a reader never sees half of it)."""
    partial = data_dir / f".{ADDRESS_FILE}.{os.getpid()}"
    partial.write_text(json.dumps(asdict(Running(url, os.getpid(), time.time()))))
    os.replace(partial, data_dir / ADDRESS_FILE)


def withdraw(data_dir: Path) -> None:
    (data_dir / ADDRESS_FILE).unlink(missing_ok=True)


def _bind(host: str, port: int) -> socket.socket:
    """Bind now, so a taken port fails with a clear message; uvicorn listens once the app is up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port (0 takes any free one)")
    return sock


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _keys_configured(settings: Settings) -> bool:
    if secret_value(settings.access.master_key):
        return True
    if not settings.shared_database and not settings.db_path.exists():
        return False
    conn = connect(settings.database, readonly=True)
    try:
        return bool(active_keys(TrailRepo(conn)))
    except DatabaseError:  # a PostgreSQL DB not migrated yet holds no keys
        return False
    finally:
        conn.close()


def check_exposure(settings: Settings) -> None:
    """With no key, anyone who reaches the proxy may read every conversation and approve any
    lesson: it then serves loopback only, unless the operator opts out loudly."""
    if _keys_configured(settings):
        return
    if not _loopback(settings.host) and not settings.access.open_on_network:
        fail(
            f"no key is configured, so serving on {settings.host} would let anyone who reaches it "
            "read every conversation. Set access.master_key (LOOPWISE_ACCESS__MASTER_KEY) or create "
            "keys with `loopwise keys create`; or serve on 127.0.0.1; or, to serve everyone "
            "unauthenticated, set access.open_on_network: true"
        )
    typer.secho(
        "warning: no key is configured: every route is open to whoever reaches "
        f"{settings.host} (see `loopwise keys create`)",
        fg="yellow",
        err=True,
    )


def log_formatter(form: str) -> logging.Formatter:
    """Text lines, or one JSON object a line (python-json-logger) with the access log's fields
    as keys of their own."""
    if form == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def configure_logging(level: str, form: str) -> logging.handlers.QueueListener:
    """Every logger (uvicorn's too) through one handler on a thread of its own, so a slow or
    blocked stderr never stalls the event loop; returns the listener to stop at exit."""
    handler = logging.StreamHandler()
    handler.setFormatter(log_formatter(form))
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(lines, handler)
    listener.start()
    queued = logging.handlers.QueueHandler(lines)
    queued.setFormatter(logging.Formatter("%(message)s"))  # the line is formatted by `handler`
    logging.basicConfig(level=level.upper(), handlers=[queued], force=True)
    return listener


def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="overrides host")] = None,
    port: Annotated[int | None, typer.Option(help="overrides port (0: any free port)")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run the proxy."""
    settings = settings_or_exit(config, host=host, port=port, data_dir=data_dir)
    found = problems(settings)
    if found:
        fail_all(found, 2)
    import uvicorn

    from proxy.app import create_app

    if not settings.model_list:
        typer.secho(
            "warning: model_list is empty; add a model (see config.example.yaml)", fg="yellow", err=True
        )
    check_exposure(settings)
    lock = hold_lock(settings.data_dir)
    sock = _bind(settings.host, settings.port)
    logs = configure_logging(settings.log_level, settings.log_format)  # once nothing refuses to serve
    for note in settings.notes:  # what a LiteLLM config holds that Loopwise does not act on
        logging.getLogger("loopwise.config").info("%s", note)
    url = local_url(settings.host, sock.getsockname()[1])

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)  # the app is ready and the socket listens
            if not self.should_exit:
                announce(settings.data_dir, url)
                typer.secho(f"loopwise listening on {url}", err=True)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            withdraw(settings.data_dir)  # here: uvicorn re-raises the signal once serving ends
            await super().shutdown(sockets)

    app = create_app(settings)
    # log_config None: uvicorn's loggers go through the handler above (JSON lines included)
    server = Server(
        uvicorn.Config(app, log_level=settings.log_level.lower(), access_log=False, log_config=None)
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a proxy in a terminal is stopped
    finally:
        withdraw(settings.data_dir)
        lock.close()
        logs.stop()  # what is queued is written first
