"""Wiring for auth_svc: `serve()` starts everything and returns a handle tests can stop."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from mp3mesh.auth.v1 import auth_pb2, auth_pb2_grpc

from auth_svc.config import AuthConfig
from auth_svc.passwords import PasswordHashing
from auth_svc.service import AuthServicer
from auth_svc.tokens import TokenService
from auth_svc.users import LoginFailures, UserRepository
from meshkit.grpc_server import GrpcServer, start_grpc_server
from meshkit.health import HealthWatcher
from meshkit.mysql import MySQLPool, MySQLTarget
from observability.grpc import traced_server_interceptors
from observability.tracing import init_tracing

log = logging.getLogger(__name__)

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name
DRAIN_S = 10.0


@dataclass
class AuthServer:
    grpc: GrpcServer
    pool: MySQLPool
    watcher: HealthWatcher

    @property
    def port(self) -> int:
        return self.grpc.port

    def stop(self, grace_s: float = DRAIN_S) -> None:
        self.watcher.stop()
        self.grpc.stop(grace_s)
        self.pool.close()


def _schema_then_ping(users: UserRepository, pool: MySQLPool) -> Callable[[], bool]:
    """Creates the schema on the first success (MySQL may start after us), then pings."""
    ready = False

    def check() -> bool:
        nonlocal ready
        if not ready:
            users.ensure_schema()
            ready = True
            log.info("user schema ready")
            return True
        return pool.ping()

    return check


def serve(config: AuthConfig) -> AuthServer:
    """Starts the gRPC server (NOT_SERVING until MySQL answers and the schema exists)."""
    init_tracing("auth_svc", config.environ, instrument_pymysql=True)
    pool = MySQLPool(MySQLTarget.from_url(config.mysql_url))
    users = UserRepository(pool)
    servicer = AuthServicer(
        users=users,
        failures=LoginFailures(pool, window_s=config.login_failure_window_s),
        hashing=PasswordHashing(),
        tokens=TokenService(
            config.jwt_secret,
            issuer=config.jwt_issuer,
            audience=config.jwt_audience,
            ttl_s=config.jwt_ttl_s,
        ),
        max_failures=config.login_max_failures,
    )
    server = start_grpc_server(
        port=config.common.grpc_port,
        bind_host=config.common.bind_host,
        register=lambda s: auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, s),
        service_names=[SERVICE_NAME],
        interceptors=traced_server_interceptors(),
    )
    watcher = HealthWatcher(server, _schema_then_ping(users, pool)).start()
    log.info("auth_svc listening", extra={"port": server.port})
    return AuthServer(grpc=server, pool=pool, watcher=watcher)
