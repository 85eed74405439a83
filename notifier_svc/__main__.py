"""`python -m notifier_svc`: consume the `mp3` queue and email every finished job's owner.

Configuration comes from the environment (see `notifier_svc.config`); SIGTERM or Ctrl-C
drains in-flight mails and exits 0.
"""

from __future__ import annotations

import os
import sys

from meshkit.cli import or_exit
from meshkit.grpc_server import wait_for_shutdown_signal
from notifier_svc.config import NotifierConfig
from notifier_svc.server import DRAIN_S, serve
from observability import init_logging


def main() -> int:
    config = or_exit(lambda: NotifierConfig.from_env(os.environ))
    init_logging("notifier_svc", config.common.log_level)
    server = or_exit(lambda: serve(config))
    wait_for_shutdown_signal()
    server.stop(DRAIN_S)
    return 0


if __name__ == "__main__":
    sys.exit(main())
