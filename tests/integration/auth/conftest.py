"""A real auth_svc (in-process, port 0) on a database of the test's own."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from mp3mesh.auth.v1 import auth_pb2_grpc

from auth_svc.config import AuthConfig
from auth_svc.server import AuthServer, serve
from tests.fixtures.processes import health_status, wait_until

JWT_SECRET = "integration-test-secret-" + "x" * 24


def auth_config(mysql_url: str, **extra: str) -> AuthConfig:
    return AuthConfig.from_env(
        {
            "MYSQL_URL": mysql_url,
            "JWT_SECRET": JWT_SECRET,
            "GRPC_PORT": "0",
            "BIND_HOST": "127.0.0.1",
            "LOGIN_MAX_FAILURES": "3",
            **extra,
        }
    )


@pytest.fixture
def auth_server(mysql_url: str) -> Iterator[AuthServer]:
    server = serve(auth_config(mysql_url))
    target = f"127.0.0.1:{server.port}"
    wait_until(lambda: health_status(target) == "SERVING", timeout_s=30, what="auth SERVING")
    yield server
    server.stop(1)


@pytest.fixture
def auth_target(auth_server: AuthServer) -> str:
    return f"127.0.0.1:{auth_server.port}"


@pytest.fixture
def auth_stub(auth_target: str) -> Iterator[auth_pb2_grpc.AuthServiceStub]:
    with grpc.insecure_channel(auth_target) as channel:
        yield auth_pb2_grpc.AuthServiceStub(channel)
