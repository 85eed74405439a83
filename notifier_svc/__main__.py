"""`python -m notifier_svc`: consume the `mp3` queue and email every finished job's owner.

Configuration comes from the environment (see `notifier_svc.config`); SIGTERM or Ctrl-C
drains in-flight mails and exits 0.
"""

from __future__ import annotations

import sys

from meshkit.cli import run_service
from notifier_svc.config import NotifierConfig
from notifier_svc.server import serve

if __name__ == "__main__":
    sys.exit(run_service("notifier_svc", NotifierConfig.from_env, serve))
