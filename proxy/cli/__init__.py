"""The `loopwise` command line."""

from proxy.cli.main import app

__all__ = ["app"]
