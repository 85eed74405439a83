"""Keeps a server's gRPC health in step with its dependencies.

Services start NOT_SERVING; a watcher thread runs the service's readiness check (e.g. "the
schema exists and MySQL answers") and flips health as the answer changes, so Kubernetes
probes and `grpcurl ... grpc.health.v1.Health/Check` tell the truth at every moment.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from opentelemetry.instrumentation.utils import suppress_instrumentation

from meshkit.grpc_server import GrpcServer

log = logging.getLogger(__name__)


class HealthWatcher:
    def __init__(
        self,
        server: GrpcServer,
        check: Callable[[], bool],
        *,
        interval_s: float = 2.0,
        name: str = "health-watcher",
    ) -> None:
        self._server = server
        self._check = check
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._serving: bool | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> HealthWatcher:
        self._thread.start()
        return self

    @property
    def serving(self) -> bool:
        return bool(self._serving)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                # Probes every few seconds would bury the real traces in ping spans.
                with suppress_instrumentation():
                    ok = self._check()
            except Exception:
                log.exception("readiness check raised")
                ok = False
            if ok != self._serving and not self._stop.is_set():
                self._serving = ok
                self._server.set_serving(ok)
                log.info("health changed", extra={"serving": ok})
            self._stop.wait(self._interval_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval_s + 5)
