"""auth_svc over real gRPC against a real MariaDB database."""

from __future__ import annotations

import time

import grpc
import pytest
from mp3mesh.auth.v1 import auth_pb2, auth_pb2_grpc

from auth_svc.server import serve
from tests.fixtures.mysql import query
from tests.fixtures.processes import free_port, health_status, wait_until
from tests.integration.auth.conftest import auth_config

pytestmark = pytest.mark.integration

PASSWORD = "a perfectly fine passphrase"


def register(
    stub: auth_pb2_grpc.AuthServiceStub, email: str, password: str = PASSWORD
) -> auth_pb2.RegisterResponse:
    return stub.Register(auth_pb2.RegisterRequest(email=email, password=password), timeout=10)


def login(
    stub: auth_pb2_grpc.AuthServiceStub, email: str, password: str = PASSWORD
) -> auth_pb2.LoginResponse:
    return stub.Login(auth_pb2.LoginRequest(email=email, password=password), timeout=10)


def rpc_error(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_register_login_verify_round_trip(auth_stub: auth_pb2_grpc.AuthServiceStub) -> None:
    user = register(auth_stub, "  Alice@Example.com ")
    assert user.email == "alice@example.com"
    token = login(auth_stub, "ALICE@example.com")
    assert token.token_type == "Bearer"
    assert token.expires_at.seconds > time.time()
    who = auth_stub.Verify(auth_pb2.VerifyRequest(token=token.access_token), timeout=10)
    assert (who.user_id, who.email) == (user.user_id, "alice@example.com")


def test_password_is_stored_only_as_an_argon2id_hash(
    auth_stub: auth_pb2_grpc.AuthServiceStub, mysql_url: str
) -> None:
    register(auth_stub, "bob@example.com")
    rows = query(mysql_url, "SELECT * FROM users WHERE email = %s", "bob@example.com")
    assert len(rows) == 1
    stored = str(rows[0]["password_hash"])
    assert stored.startswith("$argon2id$")
    assert all(PASSWORD not in str(value) for value in rows[0].values())


def test_taken_email_is_already_exists(auth_stub: auth_pb2_grpc.AuthServiceStub) -> None:
    register(auth_stub, "carol@example.com")
    error = rpc_error(lambda: register(auth_stub, "CAROL@example.com"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


def test_weak_password_is_invalid_argument_with_reason(
    auth_stub: auth_pb2_grpc.AuthServiceStub,
) -> None:
    error = rpc_error(lambda: register(auth_stub, "dan@example.com", "password123"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "too common" in (error.details() or "")


def test_invalid_email_is_invalid_argument(auth_stub: auth_pb2_grpc.AuthServiceStub) -> None:
    error = rpc_error(lambda: register(auth_stub, "not-an-email"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "email" in (error.details() or "")


def test_unknown_email_and_wrong_password_look_the_same(
    auth_stub: auth_pb2_grpc.AuthServiceStub,
) -> None:
    register(auth_stub, "erin@example.com")
    wrong = rpc_error(lambda: login(auth_stub, "erin@example.com", "not the password at all"))
    unknown = rpc_error(lambda: login(auth_stub, "nobody@example.com"))
    assert wrong.code() == unknown.code() == grpc.StatusCode.UNAUTHENTICATED
    assert wrong.details() == unknown.details()


def test_repeated_failures_are_resource_exhausted(
    auth_stub: auth_pb2_grpc.AuthServiceStub,
) -> None:
    register(auth_stub, "frank@example.com")
    for _ in range(3):  # LOGIN_MAX_FAILURES=3 in the test config
        rpc_error(lambda: login(auth_stub, "frank@example.com", "wrong password guess"))
    error = rpc_error(lambda: login(auth_stub, "frank@example.com"))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_failures_of_one_email_do_not_lock_another(
    auth_stub: auth_pb2_grpc.AuthServiceStub,
) -> None:
    register(auth_stub, "gina@example.com")
    for _ in range(3):
        rpc_error(lambda: login(auth_stub, "henry@example.com", "wrong password guess"))
    assert login(auth_stub, "gina@example.com").access_token


def test_verify_rejects_a_forged_token(auth_stub: auth_pb2_grpc.AuthServiceStub) -> None:
    register(auth_stub, "ivy@example.com")
    token = login(auth_stub, "ivy@example.com").access_token
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    error = rpc_error(lambda: auth_stub.Verify(auth_pb2.VerifyRequest(token=forged), timeout=10))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "signature" in (error.details() or "")


def test_health_is_not_serving_while_mysql_is_unreachable() -> None:
    dead_port = free_port()
    server = serve(auth_config(f"mysql://u:p@127.0.0.1:{dead_port}/auth"))
    try:
        time.sleep(1.5)
        assert health_status(f"127.0.0.1:{server.port}") == "NOT_SERVING"
    finally:
        server.stop(0)


def test_schema_creation_is_idempotent(mysql_url: str) -> None:
    for _ in range(2):
        server = serve(auth_config(mysql_url))
        target = f"127.0.0.1:{server.port}"
        wait_until(
            lambda target=target: health_status(target) == "SERVING",  # type: ignore[misc]
            timeout_s=30,
            what="SERVING",
        )
        server.stop(0)
    tables = {
        row["TABLE_NAME"]
        for row in query(
            mysql_url,
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
        )
    }
    assert tables == {"users", "login_failures"}
