"""Getting a stored job's ConversionRequested onto the `video` queue — now or later.

The upload stores the video and inserts the job with its outbox flag (`publish_pending`) set
*before* publishing; the flag is cleared only after the broker confirmed the message. If
RabbitMQ is down the job stays QUEUED with the flag, and `OutboxRelay` re-publishes it once the
broker is back. So a stored video is never silently lost, and the upload need not fail because
of the broker (see `uploads.UploadSession.finish` for why that answers 202).

Duplicates are possible and harmless: a publish whose confirm is lost is retried, and the relay
may publish a job whose flag the request thread was about to clear; the converter starts a job
only from QUEUED with an atomic update keyed by job id, so one job never yields two conversions.
"""

from __future__ import annotations

import logging
import threading

from mp3mesh.jobs.v1 import jobs_pb2
from opentelemetry.instrumentation.utils import suppress_instrumentation
from pymongo.errors import PyMongoError

from meshkit import amqp
from meshkit.jobs import JobStore

log = logging.getLogger(__name__)

# The relay leaves younger jobs to the request that is publishing them right now.
RETRY_AFTER_S = 5.0
RELAY_INTERVAL_S = 2.0
RELAY_BATCH = 100


class Outbox:
    """Publishes conversion requests with confirms and clears the jobs' outbox flags."""

    def __init__(self, jobs: JobStore, publisher: amqp.Publisher, amqp_url: str) -> None:
        self._jobs = jobs
        self._publisher = publisher
        self._amqp_url = amqp_url
        self._topology_ready = False
        self._topology_lock = threading.Lock()

    def ensure_topology(self) -> bool:
        """Declares the queues once per broker session (the publish is `mandatory`)."""
        with self._topology_lock:
            if self._topology_ready:
                return True
            try:
                with amqp.open_channel(self._amqp_url, name="gateway topology") as channel:
                    amqp.declare_topology(channel)
            except Exception as exc:
                log.info("cannot declare the queues yet: %r", exc)
                return False
            self._topology_ready = True
            return True

    def broker_ready(self) -> bool:
        """Readiness: the queues are declared and the publisher's connection is up."""
        return self.ensure_topology() and self._publisher.check()

    def publish(self, job: jobs_pb2.Job) -> bool:
        """Publishes and clears the flag; False (job left pending, logged) on any failure."""
        if not self.ensure_topology():
            return False
        try:
            self._publisher.publish(
                amqp.QUEUE_VIDEO, JobStore.requested_message(job), message_id=job.job_id
            )
        except amqp.PublishError as exc:
            log.warning(
                "job %s stays in the outbox: %s", job.job_id, exc, extra={"job_id": job.job_id}
            )
            with self._topology_lock:
                self._topology_ready = False  # e.g. the queue was deleted: declare again
            return False
        except Exception:
            # The job is durable and flagged: whatever went wrong, the relay retries it.
            log.exception("job %s stays in the outbox", job.job_id, extra={"job_id": job.job_id})
            return False
        try:
            self._jobs.mark_published(job.job_id)
        except PyMongoError:
            # The message is out; the relay may publish it once more, which is harmless.
            log.warning("job %s published but its outbox flag stays set", job.job_id)
        return True

    def relay_once(self, *, older_than_s: float = RETRY_AFTER_S) -> int:
        """Re-publishes pending jobs older than `older_than_s`; returns how many went out."""
        sent = 0
        for job in self._jobs.pending_publications(older_than_s=older_than_s, limit=RELAY_BATCH):
            if not self.publish(job):
                break
            log.info("outbox published job %s", job.job_id, extra={"job_id": job.job_id})
            sent += 1
        return sent


class OutboxRelay:
    """A daemon thread running `Outbox.relay_once` every few seconds until stopped."""

    def __init__(self, outbox: Outbox, *, interval_s: float = RELAY_INTERVAL_S) -> None:
        self._outbox = outbox
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)

    def start(self) -> OutboxRelay:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                with suppress_instrumentation():  # a scan every few seconds is not a trace
                    self._outbox.relay_once()
            except PyMongoError as exc:
                log.info("outbox relay: the job database is unavailable: %r", exc)
            except Exception:
                log.exception("outbox relay failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval_s + 10)
