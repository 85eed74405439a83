"""notifier_svc as operators meet it: `python -m notifier_svc`, grpcurl, traces, SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from meshkit.amqp import QUEUE_MP3, Publisher
from meshkit.jobs import JobStore
from tests.fixtures.processes import free_port, grpcurl, health_status, start_module, wait_until
from tests.fixtures.rabbit import queue_depth
from tests.fixtures.smtp import SmtpSinkServer
from tests.integration.notifier.conftest import PUBLIC_BASE_URL, finished_job, publish

pytestmark = pytest.mark.integration


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    target: str
    trace_file: Path


@contextmanager
def run_notifier(env: dict[str, str], tmp_path: Path) -> Iterator[Running]:
    port = free_port()
    trace_file = tmp_path / "spans.jsonl"
    process = start_module(
        "notifier_svc",
        {
            "GRPC_PORT": str(port),
            "BIND_HOST": "127.0.0.1",
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "MP3MESH_TRACE_FILE": str(trace_file),
            "OTEL_EXPORTER_OTLP_ENDPOINT": "",
            **env,
        },
    )
    target = f"127.0.0.1:{port}"
    try:
        wait_until(
            lambda: process.poll() is not None or health_status(target) == "SERVING",
            timeout_s=30,
            what="notifier SERVING",
        )
        assert process.poll() is None, process.communicate()[1].decode()[-2000:]
        yield Running(process, target, trace_file)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


@pytest.fixture
def notifier(
    mongo_uri: str, rabbit_url: str, smtp_sink: SmtpSinkServer, tmp_path: Path
) -> Iterator[Running]:
    env = {"MONGO_URI": mongo_uri, "AMQP_URL": rabbit_url, "SMTP_URL": smtp_sink.url}
    with run_notifier(env, tmp_path) as running:
        yield running


def test_grpcurl_lists_health_and_reflection(notifier: Running) -> None:
    result = grpcurl("-plaintext", notifier.target, "list")
    assert result.returncode == 0, result.stderr
    assert {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= set(
        result.stdout.split()
    )


def test_grpcurl_health_check_is_serving(notifier: Running) -> None:
    result = grpcurl("-plaintext", notifier.target, "grpc.health.v1.Health/Check")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": "SERVING"}


def spans_of(trace_file: Path, trace_id: str) -> list[dict[str, Any]]:
    if not trace_file.exists():
        return []
    spans = [json.loads(line) for line in trace_file.read_text().splitlines() if line]
    return [span for span in spans if span["trace_id"] == trace_id]


def test_the_send_joins_the_publishers_trace_and_sigterm_exits_zero(
    notifier: Running, smtp_sink: SmtpSinkServer, jobs: JobStore, publisher: Publisher
) -> None:
    finished = finished_job(jobs, email="erin@example.net")
    with TracerProvider().get_tracer("test").start_as_current_span("upload") as upload:
        trace_id = f"{upload.get_span_context().trace_id:032x}"
        publish(publisher, finished)
    wait_until(lambda: len(smtp_sink.messages()) == 1, timeout_s=30, what="mail delivered")
    wait_until(
        lambda: (job := jobs.get(finished.job_id)) is not None and job.HasField("notify_time"),
        timeout_s=30,
        what="job notified",
    )

    notifier.process.send_signal(signal.SIGTERM)
    assert notifier.process.wait(timeout=20) == 0
    assert health_status(notifier.target) == "UNREACHABLE"

    spans = {span["name"]: span for span in spans_of(notifier.trace_file, trace_id)}
    assert {"process mp3", "smtp send"} <= set(spans)
    send, process = spans["smtp send"], spans["process mp3"]
    assert send["parent_span_id"] == process["span_id"]
    assert send["service"] == "notifier_svc"
    assert send["attributes"]["mp3mesh.job_id"] == finished.job_id
    assert send["attributes"]["smtp.recipient_domain"] == "example.net"
    assert "erin@" not in json.dumps(send)


def test_sigterm_while_smtp_is_down_hands_the_message_back(
    mongo_uri: str,
    rabbit_url: str,
    smtp_sink_down: SmtpSinkServer,
    jobs: JobStore,
    publisher: Publisher,
    tmp_path: Path,
) -> None:
    env = {"MONGO_URI": mongo_uri, "AMQP_URL": rabbit_url, "SMTP_URL": smtp_sink_down.url}
    finished = finished_job(jobs)

    def retrying() -> bool:
        # Claimed, and the first attempt (connection refused) is behind us: the notifier is
        # now pausing between retries, renewing its claim.
        state = jobs.notification_state(finished.job_id)
        return state is not None and state.attempts >= 1 and state.claimer is not None

    with run_notifier(env, tmp_path) as running:
        publish(publisher, finished)
        wait_until(retrying, timeout_s=30, what="the notifier retrying")
        time.sleep(1.5)
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=20) == 0
    state = jobs.notification_state(finished.job_id)
    assert state is not None and not state.notified and state.claimer is None
    assert state.error is not None  # why it was handed back is on the job
    assert queue_depth(rabbit_url, QUEUE_MP3) == 1  # back on the queue for the next replica


def test_bad_configuration_is_one_clear_line() -> None:
    process = start_module("notifier_svc", {"SMTP_URL": "smtp://me:pw@mail.example.com"})
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "SMTP_USERNAME" in lines[0]
    assert "pw" not in lines[0].replace("SMTP_PASSWORD", "")
