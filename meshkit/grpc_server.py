"""gRPC server bootstrap shared by every service, workers included.

Each server gets the real `grpc.health.v1` servicer (NOT_SERVING until the service says
its dependencies are up), server reflection (so `grpcurl list` works everywhere), the
tracing interceptor, and a drain sequence for SIGTERM: health flips to NOT_SERVING first so
load balancers and Kubernetes stop sending work, then in-flight calls get a grace period.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

log = logging.getLogger(__name__)

LIVENESS = "liveness"


class PortInUseError(RuntimeError):
    """The requested port could not be bound (another process has it)."""


@dataclass
class GrpcServer:
    """A started gRPC server with its health servicer and the port it really bound."""

    server: grpc.Server
    port: int
    health: health.HealthServicer
    service_names: tuple[str, ...]
    _stopped: threading.Event = field(default_factory=threading.Event)

    def set_serving(self, serving: bool) -> None:
        """Reports the whole server and every service as (not) serving."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *self.service_names):
            self.health.set(name, status)

    def stop(self, grace_s: float) -> None:
        """Flips health to NOT_SERVING, lets in-flight calls finish, then stops."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait(grace_s + 1)

    def wait(self) -> None:
        self.server.wait_for_termination()


def start_grpc_server(
    *,
    port: int,
    bind_host: str,
    register: Callable[[grpc.Server], None],
    service_names: Sequence[str],
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    max_workers: int = 16,
) -> GrpcServer:
    """Builds, binds and starts a server; port 0 picks a free port (tests use that)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        interceptors=list(interceptors),
        # Without this, Linux lets a second process bind the same port silently.
        options=[("grpc.so_reuseport", 0)],
    )
    register(server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = tuple(service_names)
    reflection.enable_server_reflection(
        (*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = f"{bind_host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if bound == 0:
        raise PortInUseError(
            f"cannot listen on {address}: the port is in use (or the address is not local);"
            " stop the other process or set GRPC_PORT"
        )
    server.start()
    running = GrpcServer(server=server, port=bound, health=health_servicer, service_names=names)
    running.set_serving(False)
    # Liveness is "the process answers", independent of dependencies: a database outage must
    # make pods unready, not get them restarted. Only the shutdown drain turns it off.
    health_servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
    return running


def wait_for_shutdown_signal() -> int:
    """Blocks the main thread until SIGTERM or SIGINT and returns the signal number."""
    received = threading.Event()
    which: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        which.append(signum)
        received.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    received.wait()
    log.info("shutdown signal received", extra={"signal": signal.Signals(which[0]).name})
    return which[0]
