"""The REST app with a stand-in auth and no storage: routing errors, crashes, early refusals."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import httpx
import pytest
from mp3mesh.auth.v1 import auth_pb2
from mp3mesh.gateway.v1 import gateway_pb2

from gateway_svc.auth_client import Identity
from gateway_svc.config import ENV_VARS, GatewayConfig
from gateway_svc.core import GatewayCore
from gateway_svc.errors import ApiError
from gateway_svc.http_rules import http_rules
from gateway_svc.openapi import build_openapi
from gateway_svc.readiness import Readiness
from gateway_svc.rest_app import build_app
from meshkit.config import ConfigError

SERVICE = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"]


class AppClient:
    """Calls the ASGI app in-process (httpx's ASGI transport; no sockets, no server)."""

    def __init__(self, app: Any) -> None:
        self._transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=self._transport, base_url="http://gateway.test"
            ) as client:
                reply = await client.request(method, url, **kwargs)
                await reply.aread()
                return reply

        return asyncio.run(call())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


class FakeAuth:
    def verify(self, token: str) -> Identity:
        if token != "good":
            raise ApiError(grpc.StatusCode.UNAUTHENTICATED, "token has expired")
        return Identity("u1", "u1@example.com")

    def login(self, email: str, password: str) -> auth_pb2.LoginResponse:
        if (email, password) != ("a@example.com", "pw"):
            raise ApiError(grpc.StatusCode.UNAUTHENTICATED, "email or password is wrong")
        return auth_pb2.LoginResponse(access_token="tok", token_type="Bearer")


class CrashingCore(GatewayCore):
    def list_jobs(self, request: Any, authorization: str | None) -> Any:
        self.authenticate(authorization)
        raise RuntimeError("boom: a secret detail")


@pytest.fixture
def client() -> AppClient:
    core = CrashingCore(
        auth=FakeAuth(),  # type: ignore[arg-type]
        jobs=None,  # type: ignore[arg-type]
        blobs=None,  # type: ignore[arg-type]
        outbox=None,  # type: ignore[arg-type]
        base_url="http://x",
        max_upload_bytes=1000,
    )
    rules = http_rules(SERVICE)
    openapi = build_openapi(
        rules, base_url="http://x", upload_response=gateway_pb2.UploadVideoResponse.DESCRIPTOR
    )
    readiness = Readiness({"auth": lambda: True})
    return AppClient(build_app(core, rules, readiness, openapi))


def error(reply: Any, status: int, code: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    body: dict[str, Any] = reply.json()
    assert set(body) == {"code", "message", "details"} and body["code"] == code
    return body


def test_unknown_route_and_wrong_method(client: AppClient) -> None:
    error(client.get("/nope"), 404, 5)
    reply = client.delete("/v1/users")
    error(reply, 405, 12)
    assert reply.headers["allow"] == "POST"


def test_unexpected_exception_is_a_generic_500(client: AppClient) -> None:
    body = error(client.get("/v1/jobs", headers={"Authorization": "Bearer good"}), 500, 13)
    assert "secret" not in body["message"]
    assert body["message"].startswith("internal error")


def test_401_challenges(client: AppClient) -> None:
    missing = client.get("/v1/jobs")
    error(missing, 401, 16)
    assert missing.headers["www-authenticate"] == 'Bearer realm="mp3mesh"'
    expired = client.get("/v1/jobs", headers={"Authorization": "Bearer old"})
    error(expired, 401, 16)
    assert expired.headers["www-authenticate"] == (
        'Bearer realm="mp3mesh", error="invalid_token", error_description="token has expired"'
    )
    login = client.post("/v1/login", json={"email": "a@example.com", "password": "no"})
    error(login, 401, 16)
    assert login.headers["www-authenticate"].startswith('Basic realm="mp3mesh"')


def test_login_by_json_or_basic(client: AppClient) -> None:
    by_json = client.post("/v1/login", json={"email": "a@example.com", "password": "pw"})
    by_basic = client.post("/v1/login", auth=httpx.BasicAuth("a@example.com", "pw"))
    tutorial = client.post("/login", auth=httpx.BasicAuth("a@example.com", "pw"))
    assert by_json.json() == by_basic.json() == {"access_token": "tok", "token_type": "Bearer"}
    assert tutorial.text == "tok"


def test_upload_refusals_before_any_byte_is_stored(client: AppClient) -> None:
    auth = {"Authorization": "Bearer good"}
    error(client.post("/v1/videos?bitrate_kbps=8", headers=auth, content=b"x"), 400, 3)
    error(
        client.post(
            "/v1/videos?filename=a.mp4",
            headers={**auth, "Content-Type": "text/plain"},
            content=b"x",
        ),
        415,
        3,
    )
    error(
        client.post(
            "/v1/videos?filename=a.mp4",
            headers={**auth, "Content-Type": "video/mp4"},
            content=b"x" * 2000,
        ),
        413,
        8,
    )
    error(client.post("/v1/videos", headers={**auth, "Content-Type": "video/mp4"}), 400, 3)


def test_readyz_before_the_first_check_and_after(client: AppClient) -> None:
    reply = client.get("/readyz")
    assert reply.status_code == 503 and reply.json()["status"] == "starting"
    assert client.get("/healthz").status_code == 200


def test_config_defaults_and_errors() -> None:
    config = GatewayConfig.from_env({})
    assert (config.http_port, config.common.grpc_port) == (8080, 50050)
    assert config.auth_target == "127.0.0.1:50051"
    assert config.mongo_uri == "mongodb://127.0.0.1:27017/mp3mesh"
    assert config.amqp_url == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert config.public_base_url == "http://127.0.0.1:8080"
    assert config.max_upload_bytes == 2 * 1024**3 and config.auth_timeout_s == 2
    with pytest.raises(ConfigError) as caught:
        GatewayConfig.from_env(
            {"HTTP_PORT": "x", "MONGO_URI": "http://x", "AUTH_TIMEOUT_S": "0", "AMQP_URL": "y"}
        )
    for name in ("HTTP_PORT", "MONGO_URI", "AUTH_TIMEOUT_S", "AMQP_URL"):
        assert name in str(caught.value)
    assert GatewayConfig.from_env({"PUBLIC_BASE_URL": "https://a.b/"}).public_base_url == (
        "https://a.b"
    )


def test_config_reads_only_what_it_declares() -> None:
    read: list[str] = []

    class Recording(dict[str, str]):
        def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
            read.append(key)
            return super().get(key, default)

    GatewayConfig.from_env(Recording())
    assert set(read) <= set(ENV_VARS)
    assert {"HTTP_PORT", "AUTH_TARGET", "MONGO_URI", "AMQP_URL", "PUBLIC_BASE_URL"} <= set(read)
    assert {"MAX_UPLOAD_BYTES", "AUTH_TIMEOUT_S", "GRPC_PORT"} <= set(read)
