"""`python -m converter_svc`: converts queued videos until SIGTERM/SIGINT."""

from __future__ import annotations

import os
import sys

from converter_svc.config import ConverterConfig
from converter_svc.server import serve
from meshkit.cli import or_exit
from meshkit.grpc_server import wait_for_shutdown_signal
from observability import init_logging


def main() -> int:
    config = or_exit(lambda: ConverterConfig.from_env(os.environ))
    init_logging("converter_svc", config.common.log_level)
    server = or_exit(lambda: serve(config))
    wait_for_shutdown_signal()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
