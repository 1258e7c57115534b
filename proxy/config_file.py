"""Reading config files: YAML, LiteLLM's `include`, paths relative to the file, and errors
written one line a problem, naming the file and the path (never a raw pydantic dump)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

ENV_REFERENCE = "os.environ/"


class ConfigError(ValueError):
    """A config that cannot load: one line per problem, each naming the file and the path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def config_file_from_env(explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    named = os.environ.get("LOOPWISE_CONFIG")
    return Path(named) if named else None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"config file {path} not found"]) from None
    except IsADirectoryError:
        raise ConfigError([f"config file {path} is a directory; name the YAML file in it"]) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError([f"{path}: invalid YAML{line}: {getattr(exc, 'problem', None) or exc}"]) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: expected a mapping at the top level"])
    return raw


def _included(raw: dict[str, Any], path: Path, seen: frozenset[Path]) -> dict[str, Any]:
    """LiteLLM's `include: [file.yaml]`: each file's sections are added to this one's (lists
    appended, mappings merged, this file winning), paths relative to the including file."""
    names = raw.pop("include", None) or []
    if isinstance(names, str):
        names = [names]
    for name in names:
        other = (path.parent / str(name)).resolve()
        if other in seen:
            raise ConfigError([f"{path}: include: {name} includes itself"])
        extra = _included(_read_yaml(other), other, seen | {other})
        for key, value in extra.items():
            mine = raw.get(key)
            if isinstance(mine, list) and isinstance(value, list):
                raw[key] = value + mine
            elif isinstance(mine, dict) and isinstance(value, dict):
                raw[key] = _merge(value, mine)
            elif key not in raw:
                raw[key] = value
    return raw


def read_config_file(path: Path) -> dict[str, Any]:
    raw = _included(_read_yaml(path), path, frozenset({path.resolve()}))
    for key in ("data_dir", "policies_dir"):  # relative to the file, as compose files do
        if isinstance(raw.get(key), str) and not Path(raw[key]).expanduser().is_absolute():
            raw[key] = str(path.parent / raw[key])
    return raw


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _choices(root: type[BaseModel], loc: tuple[int | str, ...]) -> list[str] | None:
    """The settings valid where an unknown one was found, if that place is a Loopwise section."""
    model = root
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return sorted(model.model_fields)


def _problem(root: type[BaseModel], error: Any) -> str:
    loc = tuple(error["loc"])
    kind, message = error["type"], str(error["msg"])
    if kind == "extra_forbidden":
        valid = _choices(root, loc)
        message = "unknown setting" + (f"; valid: {', '.join(valid)}" if valid else "")
    elif kind == "missing":
        message = "field required"
    else:
        message = message.removeprefix("Value error, ")
        value = error.get("input")
        if isinstance(value, str | int | float | bool) and not isinstance(
            error.get("ctx", {}).get("error"), Exception
        ):
            message += f" (got {value!r})"
    return f"{_path(loc)}: {message}" if loc else message


def describe(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """One line per problem: `model_list[2].litellm_params.model: field required`."""
    return [_problem(root, error) for error in exc.errors()]
