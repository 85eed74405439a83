"""Handler decisions that are hard to provoke with real servers (MongoDB failing at exactly
the wrong moment), against a real SMTP sink and a small in-memory job store."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from mp3mesh.jobs.v1 import jobs_pb2
from pymongo.errors import AutoReconnect

from meshkit.amqp import DeliveryInfo, Outcome
from meshkit.jobs import NotificationState
from notifier_svc.compose import MailSettings
from notifier_svc.handler import NotificationHandler, new_claimer_id
from notifier_svc.smtp_url import parse_smtp_url
from notifier_svc.transport import RetryPolicy, SmtpSender, SmtpTransport
from tests.fixtures.smtp import SmtpSinkServer


class MemoryJobs:
    """Just enough of JobStore for one job; `fail_marks` makes mark_notified raise."""

    def __init__(self, job: jobs_pb2.Job) -> None:
        self.job = job
        self.claimer: str | None = None
        self.notified = False
        self.fail_marks = 0
        self.failures: list[tuple[str, bool]] = []

    def claim_notification(self, job_id: str, claimer: str, lease_s: float) -> Any:
        if self.notified or self.claimer is not None:
            return None
        self.claimer = claimer
        return self.job

    def mark_notified(self, job_id: str, claimer: str) -> bool:
        if self.fail_marks:
            self.fail_marks -= 1
            raise AutoReconnect("primary went away")
        first = not self.notified
        self.notified, self.claimer = True, None
        return first

    def release_claim(self, job_id: str, claimer: str) -> bool:
        self.claimer = None
        return True

    def record_notification_failure(
        self, job_id: str, message: str, permanent: bool, *, claimer: str | None = None
    ) -> bool:
        self.failures.append((message, permanent))
        self.claimer = None
        return True

    def notification_state(self, job_id: str) -> NotificationState:
        return NotificationState(self.notified, self.claimer, None, 1, None, False)


def delivery() -> DeliveryInfo:
    return DeliveryInfo(
        queue="mp3",
        delivery_tag=1,
        message_id="j1",
        message_type="mp3mesh.jobs.v1.ConversionFinished",
        redelivered=False,
        delivery_count=0,
        delivery_limit=5,
        headers={},
        abandoned=threading.Event(),
    )


def setup(sink: SmtpSinkServer) -> tuple[NotificationHandler, MemoryJobs, Any]:
    finished = jobs_pb2.ConversionFinished(
        job_id="j1", owner_email="frank@example.com", filename="talk.webm"
    )
    finished.failure.reason = jobs_pb2.FAILURE_REASON_TOO_LONG
    jobs = MemoryJobs(jobs_pb2.Job(job_id="j1", owner_email="frank@example.com"))
    sender = SmtpSender(
        SmtpTransport(parse_smtp_url(sink.url), timeout_s=5),
        envelope_from="noreply@mp3.example",
        retry=RetryPolicy(attempts=1),
    )
    handler = NotificationHandler(
        jobs,  # type: ignore[arg-type]
        sender,
        MailSettings("mp3mesh <noreply@mp3.example>", "http://127.0.0.1:8080"),
        lease_s=60,
    )
    return handler, jobs, finished


def test_mongo_failing_after_the_send_does_not_send_twice(smtp_sink: SmtpSinkServer) -> None:
    handler, jobs, finished = setup(smtp_sink)
    jobs.fail_marks = 1
    assert handler(finished, delivery()) is Outcome.REQUEUE
    assert len(smtp_sink.messages()) == 1 and not jobs.notified
    assert jobs.claimer == handler.claimer  # kept: nobody else may send meanwhile
    assert handler(finished, delivery()) is Outcome.ACK
    assert jobs.notified
    assert len(smtp_sink.messages()) == 1


def test_a_live_claim_elsewhere_requeues_and_a_notified_job_acks(
    smtp_sink: SmtpSinkServer,
) -> None:
    handler, jobs, finished = setup(smtp_sink)
    jobs.claimer = "other-host:1:abcd"
    assert handler(finished, delivery()) is Outcome.REQUEUE
    jobs.claimer, jobs.notified = None, True
    assert handler(finished, delivery()) is Outcome.ACK
    assert smtp_sink.messages() == []
    assert handler.outcomes == {"busy": 1, "duplicate": 1}


def test_an_unexpected_error_releases_the_claim(smtp_sink: SmtpSinkServer) -> None:
    handler, jobs, finished = setup(smtp_sink)

    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("bug")

    handler._sender.send = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="bug"):  # reaches the consumer, which requeues
        handler(finished, delivery())
    assert jobs.claimer is None


def test_an_unknown_message_type_is_rejected(smtp_sink: SmtpSinkServer) -> None:
    handler, _, _ = setup(smtp_sink)
    assert handler(jobs_pb2.ConversionRequested(job_id="x"), delivery()) is Outcome.REJECT


def test_claimer_ids_are_unique_per_instance() -> None:
    first, second = new_claimer_id(), new_claimer_id()
    assert first != second
    host, pid, _ = first.split(":")
    assert host and pid.isdigit()
