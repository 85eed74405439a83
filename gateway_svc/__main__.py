"""`python -m gateway_svc` serves REST and gRPC until SIGTERM or SIGINT, then drains and exits."""

from __future__ import annotations

import sys

from gateway_svc.config import GatewayConfig
from gateway_svc.server import serve
from meshkit.cli import run_service

if __name__ == "__main__":
    sys.exit(run_service("gateway_svc", GatewayConfig.from_env, serve))
