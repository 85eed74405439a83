"""`python -m gateway_svc` as `make up` runs it: SIGTERM drains, a taken port is one line."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.processes import free_port, health_status, start_module, wait_until
from tests.integration.gateway.conftest import User, media_files

pytestmark = pytest.mark.integration

SAMPLE = next(p for p in media_files() if p.name.startswith("go-mp4"))


def env_for(session_mongo_uri: str, rabbit_vhost: str, auth_target: str) -> dict[str, str]:
    return {
        "MONGO_URI": session_mongo_uri,
        "AMQP_URL": rabbit_vhost,
        "AUTH_TARGET": auth_target,
        "BIND_HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
        "GRPC_PORT": str(free_port()),
        "OTEL_TRACES_EXPORTER": "none",
    }


@pytest.fixture
def process_env(session_mongo_uri: str, rabbit_vhost: str, auth_target: str) -> dict[str, str]:
    return env_for(session_mongo_uri, rabbit_vhost, auth_target)


class Running:
    """A gateway process and the log lines it has written so far."""

    def __init__(self, process: Any) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace"))

    def logged(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))


@pytest.fixture
def running(process_env: dict[str, str]) -> Iterator[Running]:
    process = start_module("gateway_svc", process_env)
    try:
        target = f"127.0.0.1:{process_env['GRPC_PORT']}"
        wait_until(
            lambda: process.poll() is not None or health_status(target) == "SERVING",
            timeout_s=30,
            what="gateway process SERVING",
        )
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        yield Running(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def test_sigterm_finishes_the_upload_in_flight_then_exits(
    running: Running, process_env: dict[str, str], user: User
) -> None:
    base = f"http://127.0.0.1:{process_env['HTTP_PORT']}"
    data = SAMPLE.read_bytes()
    first_piece_sent = threading.Event()
    resume = threading.Event()
    result: dict[str, httpx.Response] = {}

    def body() -> Iterator[bytes]:
        yield data[:4096]
        first_piece_sent.set()
        resume.wait(10)
        yield data[4096:]

    def upload() -> None:
        result["reply"] = httpx.post(
            f"{base}/v1/videos",
            params={"filename": "slow.mp4"},
            content=body(),
            headers={"Authorization": f"Bearer {user.token}", "Content-Type": "video/mp4"},
            timeout=30,
        )

    uploader = threading.Thread(target=upload)
    uploader.start()
    assert first_piece_sent.wait(10)
    wait_until(lambda: running.logged('"upload started"'), timeout_s=10, what="the upload")
    running.process.send_signal(signal.SIGTERM)
    target = f"127.0.0.1:{process_env['GRPC_PORT']}"
    wait_until(lambda: health_status(target) != "SERVING", timeout_s=10, what="NOT_SERVING")
    refused = httpx.post(
        f"{base}/v1/videos",
        files={"file": ("late.mp4", data)},
        headers={"Authorization": f"Bearer {user.token}"},
        timeout=30,
    )
    assert refused.status_code == 503, refused.text
    assert "shutting down" in refused.json()["message"]
    resume.set()
    uploader.join(30)
    assert result["reply"].status_code == 202, result["reply"].text
    assert running.process.wait(30) == 0


def test_a_taken_http_port_is_one_clear_line(process_env: dict[str, str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        process_env["HTTP_PORT"] = str(sock.getsockname()[1])
        process = start_module("gateway_svc", process_env)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    lines = stderr.decode().strip().splitlines()
    assert lines[-1].startswith("error: cannot listen on 127.0.0.1:")
    assert "HTTP_PORT" in lines[-1]


def test_a_bad_setting_is_one_clear_line(process_env: dict[str, str]) -> None:
    process_env["MAX_UPLOAD_BYTES"] = "lots"
    process = start_module("gateway_svc", process_env)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert stderr.decode().strip() == (
        "error: gateway_svc: bad configuration: MAX_UPLOAD_BYTES='lots' is not a int"
    )
