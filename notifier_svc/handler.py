"""What the notifier does with one ConversionFinished: exactly one email per job.

The job document is the lock and the ledger. For each delivery:

1. `claim_notification` atomically takes the job for a lease (only if it is finished, not yet
   notified, not permanently failed, and nobody else holds a live claim). No claim → find out
   why: already notified / permanently failed / job deleted → ACK without sending; another
   worker holds a live claim → REQUEUE (the consumer waits before redelivering).
2. Compose and send (with in-process retries for about 14 minutes, see `transport`; the claim
   is renewed before each pause, so its lease stays short and a crashed worker's claim
   expires quickly).
3. `mark_notified`, then ACK. The ACK comes only after the mail was accepted *and* recorded.

Failures: a temporary SMTP failure that outlasts the in-process retries records the reason,
releases the claim and REQUEUEs (after the queue's delivery limit, i.e. an outage of over an
hour, the broker parks the message in `mp3.dead`); a permanent one (5xx,
unusable address) is recorded on the job for good and ACKed — never retried in a loop.

The one window left: the process dies after the server accepted the mail but before
`mark_notified`. The lease then expires and another worker sends again; the mail carries the
same deterministic Message-ID, so clients can fold the two. If MongoDB merely fails at that
point, the job id is remembered in-process and the next delivery only records it.
"""

from __future__ import annotations

import collections
import logging
import os
import secrets
import socket
import threading

from mp3mesh.jobs.v1 import jobs_pb2
from opentelemetry import trace
from pymongo.errors import PyMongoError

from meshkit.amqp import DeliveryInfo, Outcome
from meshkit.jobs import JobStore
from notifier_svc.compose import InvalidRecipient, MailSettings, compose, recipient_address
from notifier_svc.transport import SendError, SmtpSender, recipient_domain

log = logging.getLogger(__name__)


def new_claimer_id() -> str:
    """Who holds a claim: host + pid + random, unique across replicas and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class NotificationHandler:
    """The `mp3` queue handler (a `meshkit.amqp.Handler`)."""

    def __init__(
        self,
        jobs: JobStore,
        sender: SmtpSender,
        settings: MailSettings,
        *,
        lease_s: float,
        claimer: str | None = None,
    ) -> None:
        self._jobs = jobs
        self._sender = sender
        self._settings = settings
        self._lease_s = lease_s
        self.claimer = claimer or new_claimer_id()
        self._lock = threading.Lock()
        self._sent_unrecorded: set[str] = set()
        # What happened to each delivery, for logs and tests: sent, duplicate, refused,
        # retry (SMTP down), busy (claimed elsewhere), gone (job deleted).
        self.outcomes: collections.Counter[str] = collections.Counter()

    def _count(self, what: str) -> None:
        with self._lock:
            self.outcomes[what] += 1

    def __call__(self, message: object, info: DeliveryInfo) -> Outcome:
        if not isinstance(message, jobs_pb2.ConversionFinished):
            log.error("unexpected message type on the mp3 queue", extra={"type": info.message_type})
            return Outcome.REJECT
        job_id = message.job_id
        trace.get_current_span().set_attribute("mp3mesh.job_id", job_id)
        try:
            return self._handle(message, info)
        except PyMongoError as exc:
            log.warning(
                "MongoDB unavailable; requeueing", extra={"job_id": job_id, "error": str(exc)}
            )
            return Outcome.REQUEUE

    def _handle(self, message: jobs_pb2.ConversionFinished, info: DeliveryInfo) -> Outcome:
        job_id = message.job_id
        if self._is_sent_unrecorded(job_id):
            self._count("duplicate")
            return self._record_sent(job_id)
        job = self._jobs.claim_notification(job_id, self.claimer, self._lease_s)
        if job is None:
            return self._not_claimed(job_id)
        finished = message if message.WhichOneof("outcome") else JobStore.finished_message(job)
        if not finished.owner_email:
            finished.owner_email = job.owner_email
        try:
            recipient = recipient_address(finished.owner_email).addr_spec
            mail = compose(finished, self._settings)
            attempts = self._sender.send(
                mail,
                job_id=job_id,
                recipient=recipient,
                keep_going=lambda: (
                    not info.abandoned.is_set()
                    and self._jobs.renew_claim(job_id, self.claimer, self._lease_s)
                ),
            )
        except InvalidRecipient as exc:
            return self._give_up(job_id, str(exc))
        except SendError as error:
            if error.permanent:
                return self._give_up(job_id, error.detail)
            return self._retry_later(job_id, error.detail, info)
        except Exception:
            self._jobs.release_claim(job_id, self.claimer)
            raise  # a bug: the consumer logs it and requeues
        log.info(
            "notification sent",
            extra={
                "job_id": job_id,
                "recipient_domain": recipient_domain(recipient),
                "attempts": attempts,
                "outcome": finished.WhichOneof("outcome"),
            },
        )
        self._count("sent")
        return self._record_sent(job_id)

    def _is_sent_unrecorded(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._sent_unrecorded

    def _record_sent(self, job_id: str) -> Outcome:
        """mark_notified. If MongoDB fails, the job id is remembered (the claim stays ours
        until its lease ends) and the redelivery only records it instead of sending again."""
        try:
            self._jobs.mark_notified(job_id, self.claimer)
        except PyMongoError:
            with self._lock:
                self._sent_unrecorded.add(job_id)
            raise  # → REQUEUE in __call__
        with self._lock:
            self._sent_unrecorded.discard(job_id)
        return Outcome.ACK

    def _not_claimed(self, job_id: str) -> Outcome:
        state = self._jobs.notification_state(job_id)
        if state is None:
            log.info("job is gone (deleted); no notification", extra={"job_id": job_id})
            self._count("gone")
            return Outcome.ACK
        if state.notified:
            log.info("already notified; duplicate delivery acked", extra={"job_id": job_id})
            self._count("duplicate")
            return Outcome.ACK
        if state.failed_permanently:
            log.info("notification failed permanently before; acked", extra={"job_id": job_id})
            self._count("duplicate")
            return Outcome.ACK
        # Claimed by a live worker (it will finish or release), or not finished yet.
        log.info(
            "job is claimed by another worker or not finished; requeueing",
            extra={"job_id": job_id, "claimer": state.claimer or ""},
        )
        self._count("busy")
        return Outcome.REQUEUE

    def _give_up(self, job_id: str, detail: str) -> Outcome:
        log.warning("notification refused permanently", extra={"job_id": job_id, "error": detail})
        self._jobs.record_notification_failure(job_id, detail, permanent=True, claimer=self.claimer)
        self._count("refused")
        return Outcome.ACK

    def _retry_later(self, job_id: str, detail: str, info: DeliveryInfo) -> Outcome:
        note = detail
        if info.is_last_attempt:
            note = f"{detail} (delivery limit reached: the message goes to mp3.dead)"
        log.warning(
            "notification failed temporarily; requeueing",
            extra={"job_id": job_id, "error": note, "delivery_count": info.delivery_count},
        )
        self._jobs.record_notification_failure(job_id, note, permanent=False, claimer=self.claimer)
        self._count("retry")
        return Outcome.REQUEUE
