"""First-match policy selection: pure and in memory, on every request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from injectors import Injector
from policies.schema import Match, PolicySpec


@dataclass(frozen=True)
class MatchContext:
    app: str
    model: str
    user_role: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


def _any(patterns: Sequence[str], value: str | None) -> bool:
    if not patterns:
        return True
    return value is not None and any(fnmatchcase(value, p) for p in patterns)


def matches(match: Match, ctx: MatchContext) -> bool:
    return (
        _any(match.apps, ctx.app)
        and _any(match.models, ctx.model)
        and _any(match.user_roles, ctx.user_role)
        and all(str(ctx.metadata.get(k)) == v for k, v in match.metadata.items())
    )


@dataclass(frozen=True)
class Policy:
    """A loaded policy: what its YAML says (`spec`) and its injectors, built once at load."""

    spec: PolicySpec
    injectors: tuple[Injector[Any], ...]
    source: str

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class PolicySet:
    policies: tuple[Policy, ...]
    version: str

    def select(self, ctx: MatchContext) -> Policy | None:
        return next((p for p in self.policies if matches(p.spec.match, ctx)), None)

    def by_name(self, name: str) -> Policy | None:
        return next((p for p in self.policies if p.name == name), None)
