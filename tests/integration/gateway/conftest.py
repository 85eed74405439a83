"""A real gateway (in-process, ports 0) over a real auth_svc, MariaDB, RabbitMQ and nx-27017.

Needs the session plugins `tests.fixtures.mongo` and `tests.fixtures.rabbit` (registered in
tests/conftest.py, or `-p tests.fixtures.mongo -p tests.fixtures.rabbit`).

Most tests share one session-wide stack (auth_svc on its own MariaDB database, one MongoDB
database, the session's RabbitMQ vhost) and isolate themselves with fresh users; tests that
need another configuration (a small size cap, a broker or database that goes away, a slow
auth) start their own gateway with `make_gateway`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pymongo
import pytest
from pymongo.database import Database

from auth_svc.server import AuthServer
from auth_svc.server import serve as serve_auth
from gateway_svc.config import GatewayConfig
from gateway_svc.server import GatewayServer
from gateway_svc.server import serve as serve_gateway
from meshkit import amqp
from meshkit.blobstore import BlobStore
from meshkit.jobs import JobStore
from tests.fixtures.media import SHARED_MEDIA
from tests.fixtures.mysql import create_database, drop_database
from tests.fixtures.processes import health_status, wait_until
from tests.fixtures.rabbit import drain_queue
from tests.integration.auth.conftest import JWT_SECRET, auth_config

MEDIA = SHARED_MEDIA
PUBLIC_BASE_URL = "http://mp3mesh.test:8080"
PASSWORD = "a perfectly fine passphrase"


@dataclass
class Gateway:
    """A running gateway and how to reach it and what it talks to."""

    server: GatewayServer
    mongo_uri: str
    amqp_url: str
    auth_target: str
    _mongo: pymongo.MongoClient[dict[str, Any]] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.server.grpc_port}"

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def db(self) -> Database[dict[str, Any]]:
        if self._mongo is None:
            self._mongo = pymongo.MongoClient(
                self.mongo_uri, serverSelectionTimeoutMS=3000, tz_aware=True
            )
        return self._mongo.get_default_database()

    def stop(self) -> None:
        self.server.stop(2)
        if self._mongo is not None:
            self._mongo.close()

    def jobs(self) -> JobStore:
        return JobStore(self.db())

    def blobs(self) -> BlobStore:
        return BlobStore(self.db())

    def video_messages(self, job_id: str | None = None) -> list[Any]:
        messages = drain_queue(self.amqp_url, amqp.QUEUE_VIDEO)
        if job_id is None:
            return messages
        return [m for m in messages if m.properties.message_id == job_id]


@dataclass(frozen=True)
class User:
    user_id: str
    email: str
    token: str


def start_gateway(
    *, mongo_uri: str, amqp_url: str, auth_target: str, wait_ready: bool = True, **env: str
) -> Gateway:
    config = GatewayConfig.from_env(
        {
            "HTTP_PORT": "0",
            "GRPC_PORT": "0",
            "BIND_HOST": "127.0.0.1",
            "MONGO_URI": mongo_uri,
            "AMQP_URL": amqp_url,
            "AUTH_TARGET": auth_target,
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "AUTH_TIMEOUT_S": "2",
            **env,
        }
    )
    server = serve_gateway(config)
    gateway = Gateway(server, mongo_uri, amqp_url, auth_target)
    if wait_ready:
        try:
            wait_until(
                lambda: health_status(gateway.grpc_target) == "SERVING",
                timeout_s=30,
                what="gateway SERVING",
            )
        except AssertionError as exc:
            snapshot = gateway.server.readiness.snapshot()
            gateway.stop()
            raise AssertionError(f"{exc}; readiness: {snapshot}") from None
    return gateway


@pytest.fixture(scope="session")
def auth_stack() -> Iterator[AuthServer]:
    """One auth_svc for the session on a MariaDB database of its own."""
    url, database, user = create_database()
    server = serve_auth(auth_config(url))
    target = f"127.0.0.1:{server.port}"
    try:
        wait_until(lambda: health_status(target) == "SERVING", timeout_s=30, what="auth")
        yield server
    finally:
        server.stop(1)
        drop_database(database, user)


@pytest.fixture(scope="session")
def auth_target(auth_stack: AuthServer) -> str:
    return f"127.0.0.1:{auth_stack.port}"


@pytest.fixture(scope="session")
def session_mongo_uri(mongo_server: str) -> str:
    return f"{mongo_server}gateway_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def gateway(session_mongo_uri: str, rabbit_vhost: str, auth_target: str) -> Iterator[Gateway]:
    """The shared gateway."""
    started = start_gateway(
        mongo_uri=session_mongo_uri, amqp_url=rabbit_vhost, auth_target=auth_target
    )
    yield started
    started.stop()


@pytest.fixture
def make_gateway(
    session_mongo_uri: str, rabbit_vhost: str, auth_target: str
) -> Iterator[Callable[..., Gateway]]:
    """Starts gateways with other settings (keyword overrides); stops them after the test."""
    started: list[Gateway] = []

    def make(**overrides: Any) -> Gateway:
        settings: dict[str, Any] = {
            "mongo_uri": session_mongo_uri,
            "amqp_url": rabbit_vhost,
            "auth_target": auth_target,
            **overrides,
        }
        one = start_gateway(**settings)
        started.append(one)
        return one

    yield make
    for one in started:
        one.stop()


def sign_up(gateway: Gateway) -> User:
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    with gateway.client() as client:
        created = client.post("/v1/users", json={"email": email, "password": PASSWORD})
        assert created.status_code == 201, created.text
        login = client.post("/v1/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
    return User(created.json()["user_id"], email, login.json()["access_token"])


@pytest.fixture(scope="session")
def user(gateway: Gateway) -> User:
    """One uploader for the session (signing up costs two argon2 hashes); tests that count
    a user's jobs use `fresh_user`."""
    return sign_up(gateway)


@pytest.fixture
def fresh_user(gateway: Gateway) -> User:
    return sign_up(gateway)


@pytest.fixture
def other_user(gateway: Gateway) -> User:
    return sign_up(gateway)


@pytest.fixture
def api(gateway: Gateway, user: User) -> Iterator[httpx.Client]:
    """An HTTP client logged in as `user`."""
    with gateway.client(user.token) as client:
        yield client


def media_files() -> list[Path]:
    return sorted(path for path in MEDIA.iterdir() if path.name != "MANIFEST.tsv")


def assert_error(response: httpx.Response, status: int, grpc_code: int, *words: str) -> None:
    """Status code, the JSON error shape, the gRPC code, and words of the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == grpc_code, body
    assert body["details"] == []
    for word in words:
        assert word.lower() in body["message"].lower(), body


def wait_for(predicate: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


__all__ = ["JWT_SECRET", "Gateway", "User", "assert_error", "media_files", "sign_up"]
