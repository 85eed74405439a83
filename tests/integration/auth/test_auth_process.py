"""auth_svc as users meet it: a real process, grpcurl, the create-user command, SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher, Type

from tests.fixtures.mysql import query
from tests.fixtures.processes import (
    REPO,
    free_port,
    grpcurl,
    health_status,
    start_module,
    wait_until,
)
from tests.integration.auth.conftest import JWT_SECRET

pytestmark = pytest.mark.integration

PASSWORD = "a perfectly fine passphrase"


@pytest.fixture
def auth_process(mysql_url: str) -> Iterator[str]:
    port = free_port()
    process = start_module(
        "auth_svc",
        {
            "MYSQL_URL": mysql_url,
            "JWT_SECRET": JWT_SECRET,
            "GRPC_PORT": str(port),
            "BIND_HOST": "127.0.0.1",
        },
    )
    target = f"127.0.0.1:{port}"
    try:
        wait_until(lambda: health_status(target) == "SERVING", timeout_s=30, what="auth SERVING")
        yield target
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def call(target: str, method: str, body: dict[str, str]) -> dict[str, object]:
    result = grpcurl("-plaintext", "-d", json.dumps(body), target, method)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_grpcurl_lists_auth_health_and_reflection(auth_process: str) -> None:
    result = grpcurl("-plaintext", auth_process, "list")
    assert result.returncode == 0, result.stderr
    services = set(result.stdout.split())
    assert {
        "mp3mesh.auth.v1.AuthService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= services


def test_grpcurl_describes_the_auth_service(auth_process: str) -> None:
    result = grpcurl("-plaintext", auth_process, "describe", "mp3mesh.auth.v1.AuthService")
    assert result.returncode == 0, result.stderr
    for rpc in ("Register", "Login", "Verify"):
        assert f"rpc {rpc}" in result.stdout


def test_grpcurl_health_check_is_serving(auth_process: str) -> None:
    reply = call(auth_process, "grpc.health.v1.Health/Check", {})
    assert reply == {"status": "SERVING"}


def test_grpcurl_register_login_verify(auth_process: str) -> None:
    user = call(
        auth_process,
        "mp3mesh.auth.v1.AuthService/Register",
        {"email": "grpcurl@example.com", "password": PASSWORD},
    )
    token = call(
        auth_process,
        "mp3mesh.auth.v1.AuthService/Login",
        {"email": "grpcurl@example.com", "password": PASSWORD},
    )
    who = call(
        auth_process, "mp3mesh.auth.v1.AuthService/Verify", {"token": str(token["accessToken"])}
    )
    assert who["userId"] == user["userId"]
    assert who["email"] == "grpcurl@example.com"


def test_grpcurl_shows_the_reason_of_a_refusal(auth_process: str) -> None:
    result = grpcurl(
        "-plaintext",
        "-d",
        json.dumps({"token": "garbage"}),
        auth_process,
        "mp3mesh.auth.v1.AuthService/Verify",
    )
    assert result.returncode != 0
    assert "Unauthenticated" in result.stderr and "malformed" in result.stderr


def test_create_user_command_reads_the_password_from_stdin(
    auth_process: str, mysql_url: str
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "auth_svc",
            "create-user",
            "cli@example.com",
            "--target",
            auth_process,
        ],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "cli@example.com" in result.stdout
    assert query(mysql_url, "SELECT email FROM users") == [{"email": "cli@example.com"}]


def test_login_upgrades_a_hash_made_with_old_parameters(auth_process: str, mysql_url: str) -> None:
    call(
        auth_process,
        "mp3mesh.auth.v1.AuthService/Register",
        {"email": "old@example.com", "password": PASSWORD},
    )
    old = PasswordHasher(type=Type.ID, time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    query(mysql_url, "UPDATE users SET password_hash = %s", old)
    query(mysql_url, "COMMIT")
    call(
        auth_process,
        "mp3mesh.auth.v1.AuthService/Login",
        {"email": "old@example.com", "password": PASSWORD},
    )
    stored = str(query(mysql_url, "SELECT password_hash FROM users")[0]["password_hash"])
    assert stored != old
    assert not PasswordHasher().check_needs_rehash(stored)


def test_sigterm_drains_and_exits_cleanly(mysql_url: str) -> None:
    port = free_port()
    process = start_module(
        "auth_svc", {"MYSQL_URL": mysql_url, "JWT_SECRET": JWT_SECRET, "GRPC_PORT": str(port)}
    )
    target = f"127.0.0.1:{port}"
    wait_until(lambda: health_status(target) == "SERVING", timeout_s=30, what="auth SERVING")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    assert health_status(target) == "UNREACHABLE"


def test_bad_configuration_is_one_clear_line() -> None:
    process = start_module("auth_svc", {"MP3MESH_ENV": "production", "JWT_SECRET": ""})
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "JWT_SECRET is required" in lines[0]


def test_port_in_use_is_one_clear_line(auth_process: str, mysql_url: str) -> None:
    port = auth_process.rsplit(":", 1)[1]
    process = start_module(
        "auth_svc",
        {
            "MYSQL_URL": mysql_url,
            "JWT_SECRET": JWT_SECRET,
            "GRPC_PORT": port,
            "BIND_HOST": "127.0.0.1",
        },
    )
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "in use" in stderr.decode().strip().splitlines()[-1]
