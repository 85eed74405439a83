"""Process entry helpers: configuration errors as one clear line, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from meshkit.config import ConfigError
from meshkit.grpc_server import PortInUseError

T = TypeVar("T")


def or_exit(build: Callable[[], T]) -> T:
    """Runs a start-up step; a known start-up failure exits with status 2 and one line."""
    try:
        return build()
    except (ConfigError, PortInUseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
