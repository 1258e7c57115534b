"""The live policy set, reloaded when files change, keeping the last good set on a broken edit."""

from __future__ import annotations

import logging
from pathlib import Path

from injectors import InjectorRegistry
from policies.loader import PolicyError, load_policies
from policies.matcher import PolicySet

log = logging.getLogger("loopwise.policies")


class PolicyStore:
    def __init__(self, directory: Path, registry: InjectorRegistry) -> None:
        self.directory = directory
        self.registry = registry
        self.current: PolicySet = load_policies(directory, registry)
        self.error: str | None = None
        self._stamp = self._snapshot()

    def _snapshot(self) -> tuple[tuple[str, int, int], ...]:
        try:
            files = sorted(p for p in self.directory.iterdir() if p.suffix in (".yaml", ".yml"))
            return tuple((p.name, s.st_mtime_ns, s.st_size) for p, s in ((p, p.stat()) for p in files))
        except OSError:
            return ()

    def reload_if_changed(self) -> bool:
        """Reload when a file changed; returns True when a new set went live."""
        stamp = self._snapshot()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            fresh = load_policies(self.directory, self.registry)
        except PolicyError as exc:
            self.error = str(exc)
            log.error("policy reload failed, keeping version %s: %s", self.current.version, exc)
            return False
        self.current, self.error = fresh, None
        log.info("policies reloaded: version %s", fresh.version)
        return True
