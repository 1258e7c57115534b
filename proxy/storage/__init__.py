"""The trail DB, the system of record for interactions, feedback, lessons, reviews and keys:
SQLite in WAL mode under `data_dir` by default, or PostgreSQL (`database_url`) for replicas."""

from proxy.storage.repo import TrailRepo
from proxy.storage.trail import TrailDB

__all__ = ["TrailDB", "TrailRepo"]
