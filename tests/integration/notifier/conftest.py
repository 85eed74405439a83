"""A real notifier (in-process, gRPC port 0) against a real RabbitMQ vhost, the embedded
MongoDB-wire server and a real aiosmtpd sink; helpers to make finished jobs and publish them.

Uses the fixture plugins registered in tests/conftest.py: `tests.fixtures.mongo`,
`tests.fixtures.rabbit` and `tests.fixtures.smtp`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mp3mesh.jobs.v1 import jobs_pb2
from mp3mesh.storage.v1 import storage_pb2
from pymongo.database import Database

from meshkit.amqp import QUEUE_MP3, Publisher
from meshkit.jobs import JobStore
from notifier_svc.config import NotifierConfig
from notifier_svc.server import NotifierServer, serve
from notifier_svc.transport import RetryPolicy
from tests.fixtures.processes import health_status, wait_until

PUBLIC_BASE_URL = "https://mp3.example.test"
FAST_RETRY = RetryPolicy(attempts=2, first_delay_s=0.05, max_delay_s=0.1)
FAST_REQUEUE = (0.1, 0.5)


def notifier_config(mongo_uri: str, amqp_url: str, smtp_url: str, **extra: str) -> NotifierConfig:
    return NotifierConfig.from_env(
        {
            "MONGO_URI": mongo_uri,
            "AMQP_URL": amqp_url,
            "SMTP_URL": smtp_url,
            "SMTP_FROM": "mp3mesh <noreply@mp3.example.test>",
            "SMTP_TIMEOUT_S": "5",
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "GRPC_PORT": "0",
            "BIND_HOST": "127.0.0.1",
            **extra,
        }
    )


StartNotifier = Callable[..., NotifierServer]


@pytest.fixture
def start_notifier(mongo_uri: str, rabbit_url: str) -> Iterator[StartNotifier]:
    """Starts notifiers on the test's database and vhost; each is SERVING when returned."""
    started: list[NotifierServer] = []

    def start(smtp_url: str, **extra: str) -> NotifierServer:
        server = serve(
            notifier_config(mongo_uri, rabbit_url, smtp_url, **extra),
            retry=FAST_RETRY,
            requeue_backoff_s=FAST_REQUEUE,
            health_interval_s=0.2,
        )
        started.append(server)
        target = f"127.0.0.1:{server.grpc_port}"
        wait_until(lambda: health_status(target) == "SERVING", timeout_s=30, what="SERVING")
        return server

    yield start
    for server in started:
        server.stop(5)


@pytest.fixture
def jobs(mongo_db: Database[dict[str, Any]]) -> JobStore:
    store = JobStore(mongo_db)
    store.ensure_indexes()
    return store


@pytest.fixture
def publisher(rabbit_url: str) -> Iterator[Publisher]:
    with Publisher(rabbit_url, app_id="tests") as pub:
        yield pub


def finished_job(
    jobs: JobStore,
    *,
    email: str = "alice@example.com",
    filename: str = "holiday.mov",
    failure: jobs_pb2.Failure | None = None,
) -> jobs_pb2.ConversionFinished:
    """A job taken through the real states to DONE (or FAILED); its ConversionFinished."""
    job_id = uuid.uuid4().hex
    jobs.create(
        jobs_pb2.Job(
            job_id=job_id,
            owner_id="owner-1",
            owner_email=email,
            filename=filename,
            bitrate_kbps=192,
        )
    )
    assert jobs.start_conversion(job_id, "attempt-1") is not None
    if failure is None:
        mp3 = storage_pb2.BlobRef(
            bucket=storage_pb2.BUCKET_MP3S,
            file_id="attempt-1",
            filename="holiday.mp3",
            content_type="audio/mpeg",
            size_bytes=5_123_456,
        )
        job = jobs.finish_done(job_id, mp3, 187.6)
    else:
        job = jobs.finish_failed(job_id, failure)
    assert job is not None
    return JobStore.finished_message(job)


def publish(publisher: Publisher, message: jobs_pb2.ConversionFinished, times: int = 1) -> None:
    for _ in range(times):
        publisher.publish(QUEUE_MP3, message)
