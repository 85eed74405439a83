"""Is the gateway ready to take work? Only while auth, MongoDB and RabbitMQ all answer.

One `Readiness` runs the dependency checks (from the HealthWatcher thread, every couple of
seconds) and keeps the last answer per dependency; gRPC health is driven by its result and
`/readyz` shows the same snapshot, so both faces always tell the same story and a probe never
waits on a dead dependency's timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

# Dependency names: keys of /readyz's "dependencies", and what uploads check before reading.
AUTH = "auth"
MONGODB = "mongodb"
RABBITMQ = "rabbitmq"

UP = "up"
DOWN = "down"
UNKNOWN = "unknown"


class Readiness:
    def __init__(self, checks: Mapping[str, Callable[[], bool]]) -> None:
        self._checks = dict(checks)
        self._lock = threading.Lock()
        self._states: dict[str, str] = dict.fromkeys(self._checks, UNKNOWN)
        self._checked_at: float | None = None
        self._draining = False

    def check(self) -> bool:
        """Runs every check now; True when all dependencies are up and we are not draining."""
        states: dict[str, str] = {}
        for name, check in self._checks.items():
            try:
                states[name] = UP if check() else DOWN
            except Exception:
                log.exception("readiness check %s raised", name)
                states[name] = DOWN
        with self._lock:
            changed = {k: v for k, v in states.items() if self._states.get(k) != v}
            self._states = states
            self._checked_at = time.time()
        if changed:
            log.info("dependencies changed", extra={"dependencies": str(states)})
        return self.ready

    @property
    def ready(self) -> bool:
        with self._lock:
            return (
                not self._draining
                and self._checked_at is not None
                and all(state == UP for state in self._states.values())
            )

    def down(self) -> list[str]:
        """Dependencies the last check found down (not "unknown": before the first check)."""
        with self._lock:
            return [name for name, state in self._states.items() if state == DOWN]

    def set_draining(self) -> None:
        with self._lock:
            self._draining = True

    def snapshot(self) -> dict[str, Any]:
        """The body of `/readyz`."""
        with self._lock:
            checked = self._checked_at
            states = dict(self._states)
            draining = self._draining
        ready = not draining and checked is not None and all(s == UP for s in states.values())
        if draining:
            status = "draining"
        elif checked is None:
            status = "starting"
        else:
            status = "ready" if ready else "not ready"
        return {
            "status": status,
            "ready": ready,
            "dependencies": states,
            "checked_at": checked,
        }
