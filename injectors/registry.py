"""Name -> injector class, loaded from the `loopwise.injectors` entry-point group.

Built-in injectors are registered through the same entry points as third-party ones (see
pyproject.toml), so a plugin is a first-class citizen: `pip install` it and name it in a policy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from injectors.base import Injector, InjectorParams

GROUP = "loopwise.injectors"


class UnknownInjectorError(KeyError):
    def __init__(self, name: str, valid: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.valid = valid

    def __str__(self) -> str:
        return f"unknown injector {self.name!r}; valid choices: {', '.join(self.valid)}"


@dataclass(frozen=True)
class InjectorRegistry(Mapping[str, type[Injector[Any]]]):
    classes: Mapping[str, type[Injector[Any]]]

    def __getitem__(self, name: str) -> type[Injector[Any]]:
        try:
            return self.classes[name]
        except KeyError:
            raise UnknownInjectorError(name, sorted(self.classes)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.classes))

    def __len__(self) -> int:
        return len(self.classes)

    def build(self, name: str, params: Mapping[str, Any] | None) -> Injector[Any]:
        """Instantiate ``name`` with validated ``params`` (raises ValidationError)."""
        cls = self[name]
        validated: InjectorParams = cls.Params.model_validate(dict(params or {}))
        return cls(validated)


def load_registry() -> InjectorRegistry:
    """Every injector registered under the entry-point group, built-ins included."""
    classes: dict[str, type[Injector[Any]]] = {}
    for point in entry_points(group=GROUP):
        cls = point.load()
        if not (isinstance(cls, type) and issubclass(cls, Injector)):
            raise TypeError(f"entry point {point.name!r} ({point.value}) is not an Injector")
        classes[point.name] = cls
    if not classes:
        raise RuntimeError(
            "no injectors registered: install the package (pip install -e .) so its "
            f"{GROUP!r} entry points exist"
        )
    return InjectorRegistry(classes)


__all__ = ["InjectorRegistry", "UnknownInjectorError", "ValidationError", "load_registry"]
