"""One video upload, from its first byte to a QUEUED job: the logic both faces share.

The REST route (multipart or raw body) and the gRPC `UploadVideo` stream both feed bytes into
an `UploadSession`, which is synchronous (pymongo is blocking; the REST face calls it from a
worker thread in ~1 MiB batches, the gRPC face from its handler thread):

1. The first `SNIFF_BYTES` are held back and sniffed; not a media container → 415 before a byte
   is stored.
2. Then the bytes go straight into GridFS through `BlobUpload` (one 1 MiB chunk in memory at
   most, sha256 on the way). Past `max_bytes` → 413, and BlobUpload removes what was written.
3. `finish()` commits the blob, inserts the job (QUEUED, outbox flag set) and publishes the
   conversion request through the outbox.

Failure rules: any error before the job is inserted removes the blob (nothing half-written);
MongoDB unreachable → 503. Once the job is inserted the upload has succeeded: a RabbitMQ
failure leaves the job in the outbox and still answers 202 (see `finish`).
"""

from __future__ import annotations

import datetime
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from mp3mesh.gateway.v1 import gateway_pb2
from mp3mesh.jobs.v1 import jobs_pb2
from mp3mesh.storage.v1 import storage_pb2
from pymongo.errors import PyMongoError

from gateway_svc import sniff, views
from gateway_svc.auth_client import Identity
from gateway_svc.errors import ApiError, invalid, unavailable
from gateway_svc.outbox import Outbox
from meshkit.blobstore import BlobStore, BlobTooLarge, BlobUpload
from meshkit.jobs import JobStore
from observability.tracing import current_trace_id

log = logging.getLogger(__name__)

DEFAULT_BITRATE_KBPS = 192
MIN_BITRATE_KBPS = 96
MAX_BITRATE_KBPS = 320
MAX_FILENAME_CHARS = 255
DATABASE_DOWN = "the video store is unavailable; try again later"


def check_bitrate(bitrate_kbps: int) -> int:
    """0 means the default; anything else must be within 96-320 kb/s (400 otherwise)."""
    if bitrate_kbps == 0:
        return DEFAULT_BITRATE_KBPS
    if not MIN_BITRATE_KBPS <= bitrate_kbps <= MAX_BITRATE_KBPS:
        raise invalid(
            f"bitrate_kbps={bitrate_kbps} is out of range: use {MIN_BITRATE_KBPS}"
            f"-{MAX_BITRATE_KBPS} (default {DEFAULT_BITRATE_KBPS})"
        )
    return bitrate_kbps


def clean_filename(filename: str | None) -> str:
    """The name as the user knows it: directory parts and control characters removed."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if not name:
        raise invalid("a filename is required (multipart filename, or ?filename= for a raw body)")
    if len(name) > MAX_FILENAME_CHARS:
        raise invalid(f"the filename is longer than {MAX_FILENAME_CHARS} characters")
    return name


def too_large(max_bytes: int) -> ApiError:
    return ApiError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"the video is larger than the limit of {max_bytes} bytes",
        http_status=413,
    )


def not_media() -> ApiError:
    return ApiError(
        grpc.StatusCode.INVALID_ARGUMENT,
        "the file is not a video or audio container we can convert"
        " (MP4/MOV, Matroska/WebM, AVI, MPEG-TS/PS, Ogg, FLV, ASF, MP3, FLAC, AAC, WAV)",
        http_status=415,
    )


class UploadSession:
    """Bytes in, a QUEUED job out.

    Calls may come from different threads (the REST face writes from worker threads); a lock
    serialises them, so an `abort()` from a cancelled request waits for the write in flight
    instead of racing it (which could leave a chunk behind).
    """

    def __init__(
        self,
        *,
        identity: Identity,
        filename: str,
        bitrate_kbps: int,
        blobs: BlobStore,
        jobs: JobStore,
        outbox: Outbox,
        max_bytes: int,
        base_url: str,
        on_close: Callable[[], None] = lambda: None,
    ) -> None:
        self.job_id = uuid.uuid4().hex
        self._identity = identity
        self._filename = filename
        self._bitrate_kbps = bitrate_kbps
        self._blobs = blobs
        self._jobs = jobs
        self._outbox = outbox
        self._max_bytes = max_bytes
        self._base_url = base_url
        self._on_close = on_close
        self._head = bytearray()
        self._upload: BlobUpload | None = None
        self._size = 0
        self._closed = False
        self._lock = threading.RLock()

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Takes the next bytes of the video (any piece size)."""
        with self._lock:
            self._write(data)

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise ValueError("write to a finished upload")
        if not data:
            return
        with self._aborting_on_failure():
            self._size += len(data)
            if self._size > self._max_bytes:
                raise too_large(self._max_bytes)
            if self._upload is None:
                self._head += data
                if len(self._head) >= sniff.SNIFF_BYTES:
                    self._start_blob()
            else:
                self._upload.write(data)

    @contextmanager
    def _aborting_on_failure(self) -> Iterator[None]:
        """Any failure while the video is written removes it; storage errors become 413/503."""
        try:
            yield
        except BlobTooLarge:
            self.abort()
            raise too_large(self._max_bytes) from None
        except PyMongoError as exc:
            log.warning("upload %s: the video store failed: %r", self.job_id, exc)
            self.abort()
            raise unavailable(DATABASE_DOWN) from None
        except BaseException:
            self.abort()
            raise

    def _start_blob(self) -> None:
        head = bytes(self._head)
        container = sniff.sniff(head)
        if container is None:
            raise not_media()
        metadata: dict[str, Any] = {
            "owner_id": self._identity.user_id,
            "job_id": self.job_id,
            "container": container.name,
        }
        self._upload = self._blobs.open_upload(
            storage_pb2.BUCKET_VIDEOS,
            self._filename,
            content_type=container.content_type,
            metadata=metadata,
            max_bytes=self._max_bytes,
        )
        self._head = bytearray()
        self._upload.write(head)

    def finish(self) -> gateway_pb2.UploadVideoResponse:
        """Commits the video, stores the job and requests the conversion (see `_finish`)."""
        with self._lock:
            return self._finish()

    def _finish(self) -> gateway_pb2.UploadVideoResponse:
        """Stores the video and its job and requests the conversion; the 202's content.

        A broker already known to be down refuses the upload before its first byte (503, see
        `GatewayCore.begin_upload`). This is for the broker failing *during* an upload: by the
        time we publish, the video and the QUEUED job are durable in MongoDB with the outbox
        flag set, and `OutboxRelay` publishes the job as soon as the broker is back — so the
        answer is still 202: the job is exactly as queued as the client is told, nothing is
        lost, and making the user upload gigabytes again would gain nothing. The converter runs
        a job id once (atomic QUEUED → CONVERTING), so a re-publish never yields a second
        conversion.
        """
        if self._closed:
            raise ValueError("finish of a closed upload")
        with self._aborting_on_failure():
            if self._upload is None:
                if not self._head:
                    raise invalid("the file is empty")
                self._start_blob()
            assert self._upload is not None
            video = self._upload.commit()
        job = jobs_pb2.Job(
            job_id=self.job_id,
            owner_id=self._identity.user_id,
            owner_email=self._identity.email,
            filename=self._filename,
            state=jobs_pb2.JOB_STATE_QUEUED,
            bitrate_kbps=self._bitrate_kbps,
            trace_id=current_trace_id(),
        )
        job.video.CopyFrom(video)
        job.create_time.FromDatetime(datetime.datetime.now(datetime.UTC))
        try:
            stored = self._jobs.create(job)
        except PyMongoError as exc:
            log.warning("upload %s: cannot insert the job: %r", self.job_id, exc)
            self._delete_blob(video)
            self._close()
            raise unavailable(DATABASE_DOWN) from None
        except BaseException:
            self._delete_blob(video)
            self._close()
            raise
        try:
            queued = self._outbox.publish(stored)
        finally:
            self._close()
        log.info(
            "video stored, job queued",
            extra={
                "job_id": self.job_id,
                "size_bytes": video.size_bytes,
                "sha256": video.sha256,
                "published": queued,
            },
        )
        return gateway_pb2.UploadVideoResponse(
            job_id=self.job_id,
            state=jobs_pb2.JOB_STATE_QUEUED,
            status_url=views.status_url(self._base_url, self.job_id),
            download_url=views.download_url(self._base_url, self.job_id),
        )

    def _delete_blob(self, video: storage_pb2.BlobRef) -> None:
        try:
            self._blobs.delete(video.bucket, video.file_id)
        except PyMongoError:
            log.error("upload %s: could not remove video %s", self.job_id, video.file_id)

    def abort(self) -> None:
        """Drops everything written so far (idempotent; best effort if MongoDB is down)."""
        with self._lock:
            self._abort()

    def _abort(self) -> None:
        if self._closed:
            return
        upload, self._upload = self._upload, None
        self._head = bytearray()
        self._close()
        if upload is not None and not upload.closed:
            try:
                upload.abort()
            except PyMongoError:
                log.warning("upload %s: could not remove the partial video", self.job_id)

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close()


class UploadGate:
    """Counts uploads in flight and refuses new ones while the gateway drains (SIGTERM)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._inflight = 0
        self._draining = False

    def enter(self) -> None:
        with self._lock:
            if self._draining:
                raise unavailable("the gateway is shutting down; retry on another instance")
            self._inflight += 1

    def leave(self) -> None:
        with self._lock:
            self._inflight -= 1
            self._lock.notify_all()

    @property
    def inflight(self) -> int:
        return self._inflight

    def drain(self, timeout_s: float) -> bool:
        """Refuses new uploads and waits for the running ones; True if all finished."""
        with self._lock:
            self._draining = True
            return self._lock.wait_for(lambda: self._inflight == 0, timeout=timeout_s)
