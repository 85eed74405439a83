"""The notifier end to end on real servers: what the mail says, and exactly one per job."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from mp3mesh.jobs.v1 import jobs_pb2

from meshkit.amqp import QUEUE_MP3, Publisher, dead_letter_queue
from meshkit.jobs import JobStore
from notifier_svc.server import NotifierServer
from tests.fixtures.processes import wait_until
from tests.fixtures.rabbit import queue_depth
from tests.fixtures.smtp import SmtpSinkServer
from tests.integration.notifier.conftest import (
    PUBLIC_BASE_URL,
    StartNotifier,
    finished_job,
    publish,
)

pytestmark = pytest.mark.integration


def bodies(mail: EmailMessage) -> tuple[str, str]:
    plain = mail.get_body(preferencelist=("plain",))
    rich = mail.get_body(preferencelist=("html",))
    assert plain is not None and rich is not None
    return str(plain.get_content()), str(rich.get_content())


def notified(jobs: JobStore, job_id: str) -> bool:
    job = jobs.get(job_id)
    return job is not None and job.HasField("notify_time")


def assert_queues_empty_after_stop(server: NotifierServer, rabbit_url: str) -> None:
    """Stopping hands every unacked delivery back, so an empty queue afterwards proves that
    each delivery was acked, and an empty `mp3.dead` that none was dead-lettered."""
    server.stop(5)
    assert queue_depth(rabbit_url, QUEUE_MP3) == 0
    assert queue_depth(rabbit_url, dead_letter_queue(QUEUE_MP3)) == 0


def test_success_mail_has_name_size_duration_and_link(
    start_notifier: StartNotifier,
    smtp_sink: SmtpSinkServer,
    jobs: JobStore,
    publisher: Publisher,
    rabbit_url: str,
) -> None:
    server = start_notifier(smtp_sink.url)
    finished = finished_job(jobs, filename="Summer holiday.mov")
    publish(publisher, finished)
    wait_until(lambda: notified(jobs, finished.job_id), timeout_s=30, what="job notified")

    [mail] = smtp_sink.messages()
    assert mail["Subject"] == "Your MP3 is ready: Summer holiday.mp3"
    assert mail["To"] == "alice@example.com"
    assert mail["Delivered-To"] == "alice@example.com"
    assert mail["From"] == "mp3mesh <noreply@mp3.example.test>"
    assert mail["Message-ID"] == f"<job-{finished.job_id}@mp3mesh>"
    assert mail["Date"] is not None
    plain, rich = bodies(mail)
    link = f"{PUBLIC_BASE_URL}/v1/jobs/{finished.job_id}/mp3"
    for body in (plain, rich):
        assert "Summer holiday.mov" in body
        assert "5.1 MB" in body
        assert "3:08" in body
        assert link in body
        assert f"mp3mesh download {finished.job_id}" in body
    state = jobs.notification_state(finished.job_id)
    assert state is not None and state.notified and state.error is None
    assert_queues_empty_after_stop(server, rabbit_url)


def test_failure_mail_gives_the_reason_in_plain_words(
    start_notifier: StartNotifier,
    smtp_sink: SmtpSinkServer,
    jobs: JobStore,
    publisher: Publisher,
) -> None:
    start_notifier(smtp_sink.url)
    failure = jobs_pb2.Failure(
        reason=jobs_pb2.FAILURE_REASON_NO_AUDIO, message="no audio stream in the file"
    )
    finished = finished_job(jobs, email="bob@example.com", filename="silent.mp4", failure=failure)
    publish(publisher, finished)
    wait_until(lambda: notified(jobs, finished.job_id), timeout_s=30, what="job notified")

    [mail] = smtp_sink.messages_to("bob@example.com")
    assert mail["Subject"] == "Conversion failed: silent.mp4"
    plain, rich = bodies(mail)
    for body in (plain, rich):
        assert "no audio track" in body
        assert "no audio stream in the file" in body
        assert "silent.mp4" in body
        assert "/v1/jobs/" not in body


def test_the_same_message_delivered_twice_sends_one_mail(
    start_notifier: StartNotifier,
    smtp_sink: SmtpSinkServer,
    jobs: JobStore,
    publisher: Publisher,
    rabbit_url: str,
) -> None:
    server = start_notifier(smtp_sink.url)
    finished = finished_job(jobs)
    publish(publisher, finished, times=2)
    outcomes = server.handler.outcomes
    wait_until(
        lambda: outcomes["sent"] + outcomes["duplicate"] == 2, timeout_s=30, what="2 handled"
    )
    assert (outcomes["sent"], outcomes["duplicate"]) == (1, 1)
    assert len(smtp_sink.messages()) == 1
    assert smtp_sink.attempts("alice@example.com") == 1
    assert_queues_empty_after_stop(server, rabbit_url)


def test_two_notifiers_on_one_queue_send_one_mail(
    start_notifier: StartNotifier,
    smtp_sink: SmtpSinkServer,
    jobs: JobStore,
    publisher: Publisher,
    rabbit_url: str,
) -> None:
    first = start_notifier(smtp_sink.url)
    second = start_notifier(smtp_sink.url)
    assert first.handler.claimer != second.handler.claimer
    finished = finished_job(jobs)
    publish(publisher, finished, times=6)  # round-robin: both replicas get copies

    def acked() -> int:
        return sum(
            s.handler.outcomes["sent"] + s.handler.outcomes["duplicate"] for s in (first, second)
        )

    wait_until(lambda: acked() == 6, timeout_s=60, what="6 deliveries acked")
    assert first.handler.outcomes.total() > 0 and second.handler.outcomes.total() > 0
    assert first.handler.outcomes["sent"] + second.handler.outcomes["sent"] == 1
    assert len(smtp_sink.messages()) == 1
    first.stop(5)
    assert_queues_empty_after_stop(second, rabbit_url)


def test_smtp_down_for_a_while_then_back_delivers_exactly_once(
    start_notifier: StartNotifier,
    smtp_sink_down: SmtpSinkServer,
    jobs: JobStore,
    publisher: Publisher,
    rabbit_url: str,
) -> None:
    server = start_notifier(smtp_sink_down.url)
    finished = finished_job(jobs)
    publish(publisher, finished)

    # two deliveries (each with in-process retries) failed and were handed back
    outcomes = server.handler.outcomes
    wait_until(lambda: outcomes["retry"] >= 2, timeout_s=30, what="two failed deliveries")
    state = jobs.notification_state(finished.job_id)
    assert state is not None and not state.notified and "unreachable" in (state.error or "")
    assert state.attempts >= 2

    smtp_sink_down.start()
    wait_until(lambda: notified(jobs, finished.job_id), timeout_s=60, what="job notified")
    assert len(smtp_sink_down.messages()) == 1
    assert smtp_sink_down.attempts("alice@example.com") == 1
    assert_queues_empty_after_stop(server, rabbit_url)
    assert len(smtp_sink_down.messages()) == 1


def test_a_550_recipient_is_recorded_as_permanent_and_not_retried(
    start_notifier: StartNotifier,
    smtp_sink: SmtpSinkServer,
    jobs: JobStore,
    publisher: Publisher,
    rabbit_url: str,
) -> None:
    server = start_notifier(smtp_sink.url)
    smtp_sink.reject("ghost@example.com", "550 5.1.1 <ghost@example.com>: no such user")
    finished = finished_job(jobs, email="ghost@example.com")
    publish(publisher, finished)
    wait_until(
        lambda: server.handler.outcomes["refused"] == 1, timeout_s=30, what="refusal recorded"
    )
    state = jobs.notification_state(finished.job_id)
    assert state is not None
    assert state.failed_permanently and not state.notified
    assert "550 5.1.1" in (state.error or "")

    publish(publisher, finished)  # a redelivery changes nothing
    wait_until(lambda: server.handler.outcomes["duplicate"] == 1, timeout_s=30, what="dup")
    assert smtp_sink.attempts("ghost@example.com") == 1
    assert smtp_sink.messages() == []
    assert_queues_empty_after_stop(server, rabbit_url)


def test_a_hostile_filename_keeps_headers_intact_and_html_escaped(
    start_notifier: StartNotifier,
    smtp_sink: SmtpSinkServer,
    jobs: JobStore,
    publisher: Publisher,
) -> None:
    start_notifier(smtp_sink.url)
    name = "x\r\nBcc: victim@example.org\r\nX-Evil: 1\r\n\r\n<script>alert('hi')</script>.avi"
    finished = finished_job(jobs, filename=name)
    publish(publisher, finished)
    wait_until(lambda: notified(jobs, finished.job_id), timeout_s=30, what="job notified")

    [mail] = smtp_sink.messages()
    assert len(mail.get_all("Subject") or []) == 1
    assert mail["Bcc"] is None and mail["X-Evil"] is None
    assert mail.get_all("Delivered-To") == ["alice@example.com"]  # no smuggled recipient
    assert smtp_sink.attempts("victim@example.org") == 0
    assert str(mail["Subject"]).startswith("Your MP3 is ready: x Bcc: victim@example.org")
    assert mail.is_multipart() and len(mail.get_payload()) == 2  # type: ignore[arg-type]
    _, rich = bodies(mail)
    assert "<script>" not in rich
    assert "&lt;script&gt;alert(&#x27;hi&#x27;)&lt;/script&gt;" in rich


def test_a_deleted_job_is_acked_without_mail(
    start_notifier: StartNotifier,
    smtp_sink: SmtpSinkServer,
    jobs: JobStore,
    publisher: Publisher,
    rabbit_url: str,
) -> None:
    server = start_notifier(smtp_sink.url)
    finished = finished_job(jobs)
    assert jobs.delete_for_owner(finished.job_id, "owner-1") is not None
    publish(publisher, finished)
    wait_until(lambda: server.handler.outcomes["gone"] == 1, timeout_s=30, what="gone")
    assert smtp_sink.messages() == []
    assert_queues_empty_after_stop(server, rabbit_url)
