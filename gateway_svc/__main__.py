"""`python -m gateway_svc` serves REST and gRPC until SIGTERM or SIGINT, then drains and exits."""

from __future__ import annotations

import os
import sys

from gateway_svc.config import GatewayConfig
from gateway_svc.server import DRAIN_S, serve
from meshkit.cli import or_exit
from meshkit.grpc_server import wait_for_shutdown_signal
from observability import init_logging


def main() -> int:
    config = or_exit(lambda: GatewayConfig.from_env(os.environ))
    init_logging("gateway_svc", config.common.log_level)
    server = or_exit(lambda: serve(config))
    wait_for_shutdown_signal()
    server.stop(DRAIN_S)
    return 0


if __name__ == "__main__":
    sys.exit(main())
