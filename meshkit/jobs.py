"""The `jobs` collection: every state change of a conversion job, each one atomic.

Each transition is a single conditional `find_one_and_update` (or update) on the job id, so two
replicas or a redelivered message can never both win: the filter states the precondition and
MongoDB applies the change only if it still holds. The job id is the idempotency key of every
message about the job.

Stored shape (one document per job): the `Job` proto's fields with enums as their names
(`"JOB_STATE_DONE"`), timestamps as UTC datetimes, plus bookkeeping the proto does not carry:
`publish_pending` (outbox flag, removed once the request is on the queue), `attempts` and
`attempt_file_ids` (MP3 ids each conversion attempt wrote under, for cleaning up crashed ones),
and the notifier's `notify_claimer` / `notify_lease_until` / `notify_error` / `notify_failed`.

Written to work the same on MongoDB 7 and on the embedded nx-27017 server, whose quirks shape
the updates here (each verified by the integration tests):

* `$set` of a bare datetime stores a *string* on nx-27017 (its fast SQL update path binds the
  value as text), so "now" timestamps are written with `$currentDate` (read back from the
  returned document) and the notification lease is epoch seconds (a float).
* A field set to null does not always match `{field: null}` there, so absence is expressed by
  `$unset` and tested with `$exists: false`; null is never stored.
* Datetimes are stored with millisecond precision (BSON), so `create_time` is truncated to ms
  before insert and page tokens round-trip exactly.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mp3mesh.jobs.v1 import jobs_pb2
from mp3mesh.storage.v1 import storage_pb2
from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

COLLECTION = "jobs"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

_QUEUED = jobs_pb2.JobState.Name(jobs_pb2.JOB_STATE_QUEUED)
_CONVERTING = jobs_pb2.JobState.Name(jobs_pb2.JOB_STATE_CONVERTING)
_DONE = jobs_pb2.JobState.Name(jobs_pb2.JOB_STATE_DONE)
_FAILED = jobs_pb2.JobState.Name(jobs_pb2.JOB_STATE_FAILED)
_UNFINISHED = (_QUEUED, _CONVERTING)
_FINISHED = (_DONE, _FAILED)
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


class JobAlreadyExists(Exception):
    """A job with this id is already stored."""


class InvalidPageToken(ValueError):
    """The page token is not one `list_for_owner` produced (→ INVALID_ARGUMENT)."""


@dataclass(frozen=True)
class NotificationState:
    """The notifier's bookkeeping for one job (not part of the Job proto)."""

    notified: bool
    claimer: str | None
    lease_until: float | None
    attempts: int
    error: str | None
    failed_permanently: bool


def _utcnow_ms() -> datetime.datetime:
    now = datetime.datetime.now(datetime.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _as_utc(value: Any, field: str) -> datetime.datetime:
    if not isinstance(value, datetime.datetime):
        raise TypeError(f"job field {field!r} holds {type(value).__name__}, expected a datetime")
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)


def ref_to_doc(ref: storage_pb2.BlobRef) -> dict[str, Any]:
    """A BlobRef as stored inside a job document."""
    return {
        "bucket": storage_pb2.Bucket.Name(ref.bucket),
        "file_id": ref.file_id,
        "filename": ref.filename,
        "content_type": ref.content_type,
        "size_bytes": int(ref.size_bytes),
        "sha256": ref.sha256,
    }


def ref_from_doc(doc: Mapping[str, Any]) -> storage_pb2.BlobRef:
    return storage_pb2.BlobRef(
        bucket=str(doc["bucket"]),  # protobuf accepts enum names; unknown names raise
        file_id=str(doc.get("file_id", "")),
        filename=str(doc.get("filename", "")),
        content_type=str(doc.get("content_type", "")),
        size_bytes=int(doc.get("size_bytes", 0)),
        sha256=str(doc.get("sha256", "")),
    )


def failure_to_doc(failure: jobs_pb2.Failure) -> dict[str, Any]:
    return {"reason": jobs_pb2.FailureReason.Name(failure.reason), "message": failure.message}


def job_from_doc(doc: Mapping[str, Any]) -> jobs_pb2.Job:
    """The Job proto for a stored document."""
    job = jobs_pb2.Job(
        job_id=doc["job_id"],
        owner_id=doc.get("owner_id", ""),
        owner_email=doc.get("owner_email", ""),
        filename=doc.get("filename", ""),
        state=str(doc["state"]),
        bitrate_kbps=int(doc.get("bitrate_kbps", 0)),
        mp3_duration_s=float(doc.get("mp3_duration_s", 0.0)),
        trace_id=doc.get("trace_id", ""),
    )
    if doc.get("video"):
        job.video.CopyFrom(ref_from_doc(doc["video"]))
    if doc.get("mp3"):
        job.mp3.CopyFrom(ref_from_doc(doc["mp3"]))
    if doc.get("failure"):
        failure = doc["failure"]
        job.failure.CopyFrom(
            jobs_pb2.Failure(reason=str(failure["reason"]), message=failure.get("message", ""))
        )
    for field in ("create_time", "update_time", "finish_time", "notify_time"):
        if doc.get(field) is not None:
            getattr(job, field).FromDatetime(_as_utc(doc[field], field))
    return job


def job_to_doc(job: jobs_pb2.Job, create_time: datetime.datetime) -> dict[str, Any]:
    """The document `create` inserts for a new job (always QUEUED)."""
    doc: dict[str, Any] = {
        "job_id": job.job_id,
        "owner_id": job.owner_id,
        "owner_email": job.owner_email,
        "filename": job.filename,
        "state": _QUEUED,
        "bitrate_kbps": int(job.bitrate_kbps),
        "trace_id": job.trace_id,
        "create_time": create_time,
        # Integer milliseconds for ordering and paging: nx-27017 compares dates only to the
        # second, so jobs created within one second would repeat across pages.
        "create_ms": _millis(create_time),
        "update_time": create_time,
        "publish_pending": True,
        "attempts": 0,
    }
    if job.HasField("video"):
        doc["video"] = ref_to_doc(job.video)
    return doc


def _millis(when: datetime.datetime) -> int:
    return (_as_utc(when, "create_time") - _EPOCH) // datetime.timedelta(milliseconds=1)


def _encode_token(create_ms: int, job_id: str) -> str:
    raw = json.dumps({"t": create_ms, "j": job_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        millis, job_id = data["t"], data["j"]
        if not isinstance(millis, int) or not isinstance(job_id, str):
            raise TypeError("bad token fields")
        if not 0 <= millis < 2**53:
            raise ValueError("token time out of range")
    except (binascii.Error, ValueError, TypeError, KeyError, OverflowError, OSError) as exc:
        raise InvalidPageToken("invalid page token") from exc
    return millis, job_id


class JobStore:
    """Typed, atomic access to the `jobs` collection."""

    def __init__(self, db: Database[dict[str, Any]]) -> None:
        self._jobs: Collection[dict[str, Any]] = db[COLLECTION]

    @property
    def collection(self) -> Collection[dict[str, Any]]:
        """The raw collection (for tests and operational scripts)."""
        return self._jobs

    def ensure_indexes(self) -> None:
        """Creates the indexes if missing; safe to call at every start, from every replica."""
        self._jobs.create_index([("job_id", 1)], unique=True, name="job_id_1")
        self._jobs.create_index(
            [("owner_id", 1), ("create_ms", -1), ("job_id", -1)],
            name="owner_id_1_create_ms_-1_job_id_-1",
        )
        # only unpublished jobs are indexed: the outbox relay's scan stays tiny
        self._jobs.create_index(
            [("publish_pending", 1), ("create_time", 1)],
            partialFilterExpression={"publish_pending": True},
            name="publish_pending_1_create_time_1",
        )

    # ---- gateway ---------------------------------------------------------------------------

    def create(self, job: jobs_pb2.Job) -> jobs_pb2.Job:
        """Inserts a new QUEUED job with its outbox flag set; returns it as stored.

        `create_time` defaults to now. Raises `JobAlreadyExists` for a duplicate job id.
        """
        if not job.job_id or not job.owner_id:
            raise ValueError("a job needs job_id and owner_id")
        if job.HasField("create_time"):
            created = _as_utc(job.create_time.ToDatetime(datetime.UTC), "create_time")
            created = created.replace(microsecond=created.microsecond // 1000 * 1000)
        else:
            created = _utcnow_ms()
        doc = job_to_doc(job, created)
        try:
            self._jobs.insert_one(doc)
        except DuplicateKeyError as exc:
            raise JobAlreadyExists(job.job_id) from exc
        return job_from_doc(doc)

    def mark_published(self, job_id: str) -> bool:
        """Clears the outbox flag once the broker confirmed the request; True if it was set."""
        result = self._jobs.update_one(
            {"job_id": job_id, "publish_pending": True}, {"$unset": {"publish_pending": ""}}
        )
        return result.modified_count > 0

    def pending_publications(self, older_than_s: float, limit: int) -> list[jobs_pb2.Job]:
        """Still-QUEUED jobs whose request was never confirmed on the queue, oldest first.

        `older_than_s` leaves the gateway's own in-flight publishes alone. A job a converter
        already started is not returned (its message obviously arrived).
        """
        cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=older_than_s)
        docs = (
            self._jobs.find(
                {"publish_pending": True, "state": _QUEUED, "create_time": {"$lte": cutoff}}
            )
            .sort([("create_time", 1), ("job_id", 1)])
            .limit(max(1, limit))
        )
        return [job_from_doc(doc) for doc in docs]

    def get(self, job_id: str) -> jobs_pb2.Job | None:
        doc = self._jobs.find_one({"job_id": job_id})
        return job_from_doc(doc) if doc else None

    def get_for_owner(self, job_id: str, owner_id: str) -> jobs_pb2.Job | None:
        """The job if it exists and belongs to `owner_id`; None otherwise (no difference)."""
        doc = self._jobs.find_one({"job_id": job_id, "owner_id": owner_id})
        return job_from_doc(doc) if doc else None

    def list_for_owner(
        self, owner_id: str, page_size: int = DEFAULT_PAGE_SIZE, page_token: str = ""
    ) -> tuple[list[jobs_pb2.Job], str]:
        """One page of the owner's jobs, newest first, and the next page's token ("" at end).

        Keyset pagination on (create_ms, job_id): stable while jobs are added or deleted.
        `page_size` <= 0 means the default; it is capped at 100. Raises `InvalidPageToken`.
        """
        size = DEFAULT_PAGE_SIZE if page_size <= 0 else min(page_size, MAX_PAGE_SIZE)
        query: dict[str, Any] = {"owner_id": owner_id}
        if page_token:
            after_ms, after_id = _decode_token(page_token)
            query["$or"] = [
                {"create_ms": {"$lt": after_ms}},
                {"create_ms": after_ms, "job_id": {"$lt": after_id}},
            ]
        docs = list(
            self._jobs.find(query).sort([("create_ms", -1), ("job_id", -1)]).limit(size + 1)
        )
        jobs = [job_from_doc(doc) for doc in docs[:size]]
        next_token = ""
        if len(docs) > size:
            last = docs[size - 1]
            next_token = _encode_token(int(last["create_ms"]), last["job_id"])
        return jobs, next_token

    def delete_for_owner(self, job_id: str, owner_id: str) -> jobs_pb2.Job | None:
        """Removes the owner's job and returns what it was (so its blobs can be deleted)."""
        doc = self._jobs.find_one_and_delete({"job_id": job_id, "owner_id": owner_id})
        return job_from_doc(doc) if doc else None

    # ---- converter -------------------------------------------------------------------------

    def start_conversion(
        self, job_id: str, attempt_file_id: str, *, allow_takeover: bool = True
    ) -> jobs_pb2.Job | None:
        """QUEUED (or CONVERTING) → CONVERTING, recording the MP3 id this attempt writes under.

        Returns None when the job is finished or gone (the caller re-publishes the stored
        outcome, or drops the message). `allow_takeover=False` only starts from QUEUED: pass
        `delivery.redelivered` so a duplicate first delivery (outbox re-publish) does not run
        beside a live attempt, while a redelivery after a crash takes the job over.
        """
        states = list(_UNFINISHED) if allow_takeover else [_QUEUED]
        doc = self._jobs.find_one_and_update(
            {"job_id": job_id, "state": {"$in": states}},
            {
                "$set": {"state": _CONVERTING, "attempt_file_id": attempt_file_id},
                "$inc": {"attempts": 1},
                "$push": {"attempt_file_ids": attempt_file_id},
                "$unset": {"publish_pending": ""},
                "$currentDate": {"update_time": True},
            },
            return_document=ReturnDocument.AFTER,
        )
        return job_from_doc(doc) if doc else None

    def attempt_file_ids(self, job_id: str) -> list[str]:
        """MP3 ids of every conversion attempt so far, oldest first (for cleanup)."""
        doc = self._jobs.find_one({"job_id": job_id}, projection={"attempt_file_ids": 1})
        return [str(fid) for fid in (doc or {}).get("attempt_file_ids", [])]

    def attempts(self, job_id: str) -> int:
        """How many times a conversion was started for this job."""
        doc = self._jobs.find_one({"job_id": job_id}, projection={"attempts": 1})
        return int((doc or {}).get("attempts", 0))

    def finish_done(
        self,
        job_id: str,
        mp3: storage_pb2.BlobRef,
        duration_s: float,
        *,
        attempt_file_id: str | None = None,
    ) -> jobs_pb2.Job | None:
        """→ DONE with the MP3. Idempotent: a finished job is returned unchanged (compare its
        `mp3.file_id` with yours to know whether your MP3 won). None if the job is gone.

        With `attempt_file_id`, only the attempt that currently owns the job may finish it: an
        attempt that was taken over (its message redelivered after a lost connection) must not
        record an MP3 the new attempt already cleaned up.
        """
        return self._finish(
            job_id,
            {"state": _DONE, "mp3": ref_to_doc(mp3), "mp3_duration_s": float(duration_s)},
            unset="failure",
            attempt_file_id=attempt_file_id,
        )

    def finish_failed(
        self, job_id: str, failure: jobs_pb2.Failure, *, attempt_file_id: str | None = None
    ) -> jobs_pb2.Job | None:
        """→ FAILED with the reason. Idempotent like `finish_done`, and owned the same way."""
        return self._finish(
            job_id,
            {"state": _FAILED, "failure": failure_to_doc(failure)},
            unset="mp3",
            attempt_file_id=attempt_file_id,
        )

    def _finish(
        self, job_id: str, fields: dict[str, Any], unset: str, attempt_file_id: str | None
    ) -> jobs_pb2.Job | None:
        query: dict[str, Any] = {"job_id": job_id, "state": {"$in": _UNFINISHED}}
        if attempt_file_id is not None:
            query["attempt_file_id"] = attempt_file_id
        doc = self._jobs.find_one_and_update(
            query,
            {
                "$set": fields,
                "$unset": {unset: "", "attempt_file_id": "", "publish_pending": ""},
                "$currentDate": {"finish_time": True, "update_time": True},
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return self.get(job_id)
        return job_from_doc(doc)

    @staticmethod
    def requested_message(job: jobs_pb2.Job) -> jobs_pb2.ConversionRequested:
        """The `video` queue payload for a job; the same bytes on every (re-)publish."""
        message = jobs_pb2.ConversionRequested(
            job_id=job.job_id,
            owner_id=job.owner_id,
            owner_email=job.owner_email,
            bitrate_kbps=job.bitrate_kbps,
            filename=job.filename,
        )
        message.video.CopyFrom(job.video)
        if job.HasField("create_time"):
            message.request_time.CopyFrom(job.create_time)
        return message

    @staticmethod
    def finished_message(job: jobs_pb2.Job) -> jobs_pb2.ConversionFinished:
        """The `mp3` queue payload for a finished job (the same every time it is built)."""
        message = jobs_pb2.ConversionFinished(
            job_id=job.job_id,
            owner_id=job.owner_id,
            owner_email=job.owner_email,
            filename=job.filename,
        )
        if job.state == jobs_pb2.JOB_STATE_DONE:
            message.mp3.mp3.CopyFrom(job.mp3)
            message.mp3.duration_s = job.mp3_duration_s
            message.mp3.bitrate_kbps = job.bitrate_kbps
        elif job.state == jobs_pb2.JOB_STATE_FAILED:
            message.failure.CopyFrom(job.failure)
        else:
            raise ValueError(f"job {job.job_id} is {jobs_pb2.JobState.Name(job.state)}")
        if job.HasField("finish_time"):
            message.finish_time.CopyFrom(job.finish_time)
        return message

    # ---- notifier --------------------------------------------------------------------------

    def claim_notification(self, job_id: str, claimer: str, lease_s: float) -> jobs_pb2.Job | None:
        """Takes the right to email about a finished job for `lease_s` seconds.

        Succeeds only if the job is DONE/FAILED, not yet notified, not permanently failed,
        and nobody holds a live claim (an expired one is taken over). None otherwise.
        Choose `lease_s` longer than one SMTP attempt can take.
        """
        now = time.time()
        doc = self._jobs.find_one_and_update(
            {
                "job_id": job_id,
                "state": {"$in": list(_FINISHED)},
                "notify_time": {"$exists": False},
                "notify_failed": {"$exists": False},
                "$or": [
                    {"notify_claimer": {"$exists": False}},
                    {"notify_lease_until": {"$lt": now}},
                ],
            },
            {
                "$set": {"notify_claimer": claimer, "notify_lease_until": now + lease_s},
                "$inc": {"notify_attempts": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        return job_from_doc(doc) if doc else None

    def renew_claim(self, job_id: str, claimer: str, lease_s: float) -> bool:
        """Extends `claimer`'s live claim by `lease_s` from now; False if it is not theirs.

        A notifier that keeps retrying an unreachable SMTP server renews before each pause,
        so the lease only needs to cover one attempt, and a crashed notifier's claim expires
        quickly for another replica to take over.
        """
        result = self._jobs.update_one(
            {"job_id": job_id, "notify_claimer": claimer, "notify_time": {"$exists": False}},
            {"$set": {"notify_lease_until": time.time() + lease_s}},
        )
        return result.matched_count > 0

    def mark_notified(self, job_id: str, claimer: str) -> bool:
        """Records that the email was accepted; True if this call recorded it.

        Recorded even if the claim expired meanwhile: the mail is out, and marking it stops
        anyone else from sending another.
        """
        result = self._jobs.update_one(
            {"job_id": job_id, "notify_time": {"$exists": False}},
            {
                "$set": {"notified_by": claimer},
                "$unset": {"notify_claimer": "", "notify_lease_until": "", "notify_error": ""},
                "$currentDate": {"notify_time": True, "update_time": True},
            },
        )
        return result.modified_count > 0

    def release_claim(self, job_id: str, claimer: str) -> bool:
        """Gives the claim back early (e.g. SMTP down) so a retry need not wait for the lease."""
        result = self._jobs.update_one(
            {"job_id": job_id, "notify_claimer": claimer},
            {"$unset": {"notify_claimer": "", "notify_lease_until": ""}},
        )
        return result.modified_count > 0

    def record_notification_failure(
        self, job_id: str, message: str, permanent: bool, *, claimer: str | None = None
    ) -> bool:
        """Stores why sending failed. `permanent` (e.g. SMTP 5xx) stops all further claims.

        With `claimer`, that claim is released too. True if the job exists.
        """
        update: dict[str, Any] = {
            "$set": {"notify_error": message},
            "$currentDate": {"update_time": True},
        }
        if permanent:
            update["$set"]["notify_failed"] = True
            update["$unset"] = {"notify_claimer": "", "notify_lease_until": ""}
        result = self._jobs.update_one({"job_id": job_id}, update)
        if claimer is not None and not permanent:
            self.release_claim(job_id, claimer)
        return result.matched_count > 0

    def notification_state(self, job_id: str) -> NotificationState | None:
        doc = self._jobs.find_one({"job_id": job_id})
        if doc is None:
            return None
        lease = doc.get("notify_lease_until")
        return NotificationState(
            notified=doc.get("notify_time") is not None,
            claimer=doc.get("notify_claimer"),
            lease_until=float(lease) if lease is not None else None,
            attempts=int(doc.get("notify_attempts", 0)),
            error=doc.get("notify_error"),
            failed_permanently=bool(doc.get("notify_failed", False)),
        )
