"""Name -> injector class: the built-ins by import path, third-party injectors from the
`loopwise.injectors` entry-point group.

Built-ins are listed here (as simonw/llm and datasette list their default plugins), so a source
checkout works without an editable install; a plugin is still a first-class citizen: `pip
install` it and name it in a policy. A plugin may not take a built-in's name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from injectors.base import Injector, InjectorParams

GROUP = "loopwise.injectors"
BUILT_IN = (
    "injectors.guidance:GuidanceInjector",
    "injectors.corrections:CorrectionsInjector",
    "injectors.few_shot:FewShotInjector",
    "injectors.static:StaticInjector",
    "injectors.preferences:PreferencesInjector",
)


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


def _checked(cls: object, origin: str) -> type[Injector[Any]]:
    if not (isinstance(cls, type) and issubclass(cls, Injector)):
        raise TypeError(f"{origin} is not an Injector")
    return cls


def _import(path: str) -> type[Injector[Any]]:
    module, _, name = path.partition(":")
    return _checked(getattr(import_module(module), name), path)


def load_registry() -> InjectorRegistry:
    """The built-in injectors, then every one registered under the entry-point group."""
    classes: dict[str, type[Injector[Any]]] = {}
    for path in BUILT_IN:
        cls = _import(path)
        classes[cls.name] = cls
    built_in = set(classes)
    for point in entry_points(group=GROUP):
        if point.value in BUILT_IN:
            continue  # an older install of Loopwise registered its built-ins this way
        if point.name in classes:
            taken = "a built-in injector" if point.name in built_in else "another plugin"
            origin = f"entry point {point.name!r} ({point.value})"
            raise TypeError(f"{origin} takes the name of {taken}; rename it")
        classes[point.name] = _checked(point.load(), f"entry point {point.name!r} ({point.value})")
    return InjectorRegistry(classes)


__all__ = ["InjectorRegistry", "UnknownInjectorError", "ValidationError", "load_registry"]
