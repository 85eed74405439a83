"""`python -m converter_svc`: converts queued videos until SIGTERM/SIGINT."""

from __future__ import annotations

import sys

from converter_svc.config import ConverterConfig
from converter_svc.server import serve
from meshkit.cli import run_service

if __name__ == "__main__":
    sys.exit(run_service("converter_svc", ConverterConfig.from_env, serve))
