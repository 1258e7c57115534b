"""Dependency direction and one owner per heavy library, kept by a test rather than by memory."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
OWNERS = {
    "litellm": {"proxy/upstream/litellm_adapter.py"},
    "aiohttp": {"proxy/upstream/relay.py"},
    "fastembed": {"proxy/embeddings.py"},
    "onnxruntime": {"proxy/onnx_model.py"},
    "qdrant_edge": {"proxy/vectors/edge.py"},
    "qdrant_client": {"proxy/vectors/server.py"},
    "sqlite3": {"proxy/storage/db.py", "proxy/storage/repo.py", "proxy/cli/options.py"},
}


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_each_heavy_library_has_one_owner_module() -> None:
    for package in ("proxy", "policies", "injectors"):
        for path in sources(package):
            relative = path.relative_to(ROOT).as_posix()
            for library, owners in OWNERS.items():
                if library in imports(path):
                    assert relative in owners, f"{relative} imports {library}; only {owners} may"


def test_dependencies_point_one_way() -> None:
    for path in sources("injectors"):
        assert not imports(path) & {"proxy", "policies"}, path
    for path in sources("policies"):
        assert "proxy" not in imports(path), path


def test_cli_and_policies_do_not_import_litellm() -> None:
    code = (
        "import sys, proxy.cli.main, policies, injectors; "
        "from injectors import load_registry; load_registry(); "
        "bad = [m for m in ('litellm', 'fastembed', 'qdrant_client') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_modules_stay_small() -> None:
    for package in ("proxy", "policies", "injectors"):
        for path in sources(package):
            assert len(path.read_text().splitlines()) <= 400, f"{path} is too long: split it"
