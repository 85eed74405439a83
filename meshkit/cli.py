"""Process entry for every service: configuration errors as one clear line, not a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from meshkit.config import CommonConfig, ConfigError
from meshkit.grpc_server import PortInUseError, wait_for_shutdown_signal
from observability.logs import init_logging

T = TypeVar("T")


class ServiceConfig(Protocol):
    @property
    def common(self) -> CommonConfig: ...


ConfigT = TypeVar("ConfigT", bound=ServiceConfig)


class RunningService(Protocol):
    def stop(self) -> Any: ...


def or_exit(build: Callable[[], T]) -> T:
    """Runs a start-up step; a known start-up failure exits with status 2 and one line."""
    try:
        return build()
    except (ConfigError, PortInUseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def run_service(
    name: str,
    load_config: Callable[[Mapping[str, str]], ConfigT],
    serve: Callable[[ConfigT], RunningService],
) -> int:
    """`python -m <service>`: configure, serve until SIGTERM/SIGINT, drain, exit 0."""
    config = or_exit(lambda: load_config(os.environ))
    init_logging(name, config.common.log_level)
    server = or_exit(lambda: serve(config))
    wait_for_shutdown_signal()
    server.stop()
    return 0
