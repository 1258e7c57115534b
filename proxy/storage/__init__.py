"""The trail DB: SQLite in WAL mode, the system of record for interactions, feedback, lessons."""

from proxy.storage.repo import TrailRepo
from proxy.storage.trail import TrailDB

__all__ = ["TrailDB", "TrailRepo"]
