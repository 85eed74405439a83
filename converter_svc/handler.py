"""What the converter does with one `video` message, idempotently on the job id.

Order of effects, so any crash point is safe to redeliver: (1) a finished job only has its
outcome re-published (no second MP3); (2) the attempt's MP3 id is recorded on the job before
writing, and MP3s of earlier crashed attempts are removed first; (3) MP3 stored → job DONE or
FAILED → ConversionFinished published with confirms → ack. A media failure is an answer
(FAILED + notice + ack); an infrastructure failure is retried until the delivery limit, after
which the job is marked FAILED (internal) and the message goes to `video.dead`.
"""

from __future__ import annotations

import logging
from typing import cast

from mp3mesh.jobs.v1 import jobs_pb2
from mp3mesh.storage.v1 import storage_pb2
from opentelemetry import propagate

from converter_svc.pool import ConversionPool
from converter_svc.worker_process import ConversionOutcome, ConversionTask
from meshkit.amqp import QUEUE_MP3, DeliveryInfo, Outcome, Publisher, PublishError
from meshkit.blobstore import BlobStore, new_file_id
from meshkit.jobs import JobStore

log = logging.getLogger(__name__)

UNFINISHED = (jobs_pb2.JOB_STATE_QUEUED, jobs_pb2.JOB_STATE_CONVERTING)
DEFAULT_BITRATE_KBPS = 192


def failure_reason(name: str) -> jobs_pb2.FailureReason:
    """The contract's enum value for the transcoder's reason name; unknown → INTERNAL."""
    value = jobs_pb2.FailureReason.DESCRIPTOR.values_by_name.get(f"FAILURE_REASON_{name}")
    return cast(jobs_pb2.FailureReason, value.number) if value else jobs_pb2.FAILURE_REASON_INTERNAL


class ConversionHandler:
    def __init__(
        self,
        *,
        jobs: JobStore,
        blobs: BlobStore,
        publisher: Publisher,
        pool: ConversionPool,
        max_duration_s: float,
        encoder_threads: int,
    ) -> None:
        self._jobs = jobs
        self._blobs = blobs
        self._publisher = publisher
        self._pool = pool
        self._max_duration_s = max_duration_s
        self._encoder_threads = encoder_threads

    def __call__(self, message: jobs_pb2.ConversionRequested, info: DeliveryInfo) -> Outcome:
        job_id = message.job_id
        try:
            job = self._convert_unless_finished(message, info)
        except Exception as exc:
            return self._transient_failure(job_id, info, exc)
        if job is None:
            log.info("job was deleted; dropping its message", extra={"job_id": job_id})
            return Outcome.ACK
        if job.state in UNFINISHED:
            # A duplicate first delivery (outbox re-publish) while another worker converts:
            # that worker publishes the outcome; if it crashes, its own message comes back.
            log.info(
                "job is being converted elsewhere; dropping the duplicate", extra={"job_id": job_id}
            )
            return Outcome.ACK
        try:
            self._publisher.publish(QUEUE_MP3, JobStore.finished_message(job), message_id=job_id)
        except PublishError as exc:
            # The job is finished and stored: the redelivery only re-publishes.
            log.warning("could not publish the outcome: %s", exc, extra={"job_id": job_id})
            return Outcome.REQUEUE
        return Outcome.ACK

    def _convert_unless_finished(
        self, message: jobs_pb2.ConversionRequested, info: DeliveryInfo
    ) -> jobs_pb2.Job | None:
        job_id = message.job_id
        job = self._jobs.get(job_id)
        if job is None or job.state not in UNFINISHED:
            return job
        mp3_file_id = new_file_id()
        started = self._jobs.start_conversion(
            job_id, mp3_file_id, allow_takeover=info.redelivered or info.delivery_count > 0
        )
        if started is None:
            return self._jobs.get(job_id)
        # Only once this attempt owns the job: MP3s of earlier (crashed) attempts are not
        # referenced by the unfinished job, whether they got as far as committing or not.
        for earlier in self._jobs.attempt_file_ids(job_id):
            if earlier != mp3_file_id:
                self._blobs.delete(storage_pb2.BUCKET_MP3S, earlier)
        log.info("converting", extra={"job_id": job_id, "attempt": info.delivery_count + 1})
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        outcome = self._pool.run(
            ConversionTask(
                job_id=job_id,
                owner_id=started.owner_id,
                video_ref=started.video.SerializeToString(),
                mp3_file_id=mp3_file_id,
                filename=started.filename,
                bitrate_kbps=started.bitrate_kbps or DEFAULT_BITRATE_KBPS,
                max_duration_s=self._max_duration_s,
                encoder_threads=self._encoder_threads,
                trace_carrier=carrier,
            )
        )
        return self._record(job_id, mp3_file_id, outcome)

    def _record(self, job_id: str, attempt: str, outcome: ConversionOutcome) -> jobs_pb2.Job | None:
        """Finishes the job if this attempt still owns it (see JobStore.finish_done)."""
        if outcome.mp3_ref is not None:
            mp3 = storage_pb2.BlobRef.FromString(outcome.mp3_ref)
            job = self._jobs.finish_done(job_id, mp3, outcome.duration_s, attempt_file_id=attempt)
            if job is None or job.mp3.file_id != mp3.file_id:
                # Taken over (or deleted) meanwhile: the owning attempt's MP3 is the one.
                self._blobs.delete(storage_pb2.BUCKET_MP3S, mp3.file_id)
            log.info("converted", extra={"job_id": job_id, "duration_s": outcome.duration_s})
            return job
        failure = jobs_pb2.Failure(
            reason=failure_reason(outcome.failure_reason), message=outcome.failure_message
        )
        log.info("conversion failed", extra={"job_id": job_id, "reason": outcome.failure_reason})
        return self._jobs.finish_failed(job_id, failure, attempt_file_id=attempt)

    def _transient_failure(self, job_id: str, info: DeliveryInfo, exc: Exception) -> Outcome:
        if not info.is_last_attempt:
            log.warning("conversion attempt failed, will retry: %r", exc, extra={"job_id": job_id})
            return Outcome.REQUEUE
        log.error(
            "giving up after %d attempts: %r",
            info.delivery_count + 1,
            exc,
            extra={"job_id": job_id},
        )
        try:
            job = self._jobs.finish_failed(
                job_id,
                jobs_pb2.Failure(
                    reason=jobs_pb2.FAILURE_REASON_INTERNAL,
                    message=f"conversion gave up after {info.delivery_count + 1} attempts "
                    "because of an internal error; the upload is kept in the dead-letter queue",
                ),
            )
            if job is not None and job.state == jobs_pb2.JOB_STATE_FAILED:
                self._publisher.publish(
                    QUEUE_MP3, JobStore.finished_message(job), message_id=job_id
                )
        except Exception:
            log.exception("could not record the give-up", extra={"job_id": job_id})
        return Outcome.REJECT
