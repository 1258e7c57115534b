"""Load a directory of policy YAML files, with errors that name the file, the path and the fix."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from injectors import InjectorRegistry, UnknownInjectorError
from policies.matcher import Policy, PolicySet
from policies.schema import PolicyFile


class PolicyError(ValueError):
    """A policy file that cannot be used; the message says where and why."""


def shipped_policies_dir() -> Path:
    return Path(__file__).parent / "shipped"


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(error: Any) -> str:
    message = str(error["msg"])
    if error["type"] == "literal_error":
        message += f" (got {error['input']!r})"
    if error["type"] == "extra_forbidden":
        message = f"unknown field {error['loc'][-1]!r}"
    return message


def _policy_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise PolicyError(f"{directory}: policies directory does not exist")
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    if not files:
        raise PolicyError(f"{directory}: no *.yaml policy files found")
    return files


def _parse(path: Path) -> PolicyFile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path.name}: invalid YAML: {exc}") from None
    try:
        return PolicyFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PolicyError(f"{path.name}: {_location(first['loc'])}: {_describe(first)}") from None


def _compile(path: Path, parsed: PolicyFile, registry: InjectorRegistry) -> list[Policy]:
    out = []
    for i, policy in enumerate(parsed.policies):
        injectors = []
        for j, spec in enumerate(policy.injectors):
            where = f"{path.name}: policies[{i}].injectors[{j}]"
            try:
                injectors.append(registry.build(spec.name, spec.params))
            except UnknownInjectorError as exc:
                raise PolicyError(f"{where}: {exc}") from None
            except ValidationError as exc:
                first = exc.errors()[0]
                raise PolicyError(
                    f"{where}.{spec.name}.{_location(first['loc'])}: {_describe(first)}"
                ) from None
        out.append(Policy(policy, tuple(injectors), path.name))
    return out


def load_policies(directory: Path, registry: InjectorRegistry) -> PolicySet:
    """All policies in ``directory``, files in name order, policies in file order."""
    compiled: list[Policy] = []
    digest = hashlib.sha256()
    names: dict[str, str] = {}
    for path in _policy_files(directory):
        digest.update(path.read_bytes())
        for policy in _compile(path, _parse(path), registry):
            if policy.name in names:
                raise PolicyError(
                    f"{path.name}: policy name {policy.name!r} already used in {names[policy.name]}"
                )
            names[policy.name] = path.name
            compiled.append(policy)
    return PolicySet(tuple(compiled), digest.hexdigest()[:12])
