"""The conversion itself, run in a pool of worker processes.

Why processes, not threads: the CPU work (decode, resample, MP3 encode) must really use every
core, whatever the GIL does inside the codecs; and a decoder crash on a hostile file kills a
worker process, not the service. Each worker process keeps its own MongoDB client (pymongo
clients must not cross a fork) in a process-local slot filled by the pool's initializer.
Tasks and outcomes are small picklable records: bytes never cross the process boundary.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from mp3mesh.storage.v1 import storage_pb2
from opentelemetry import propagate, trace

from meshkit.blobstore import BlobStore
from meshkit.mongo import connect, default_database
from observability.logs import init_logging
from observability.tracing import init_tracing

MP3_CONTENT_TYPE = "audio/mpeg"


@dataclass(frozen=True)
class ConversionTask:
    job_id: str
    owner_id: str
    video_ref: bytes  # serialized storage.v1.BlobRef
    mp3_file_id: str  # recorded on the job before the attempt starts, for crash cleanup
    filename: str
    bitrate_kbps: int
    max_duration_s: float
    encoder_threads: int  # cores per conversion: the pool runs one conversion per worker
    trace_carrier: Mapping[str, str]


@dataclass(frozen=True)
class ConversionOutcome:
    mp3_ref: bytes | None  # serialized storage.v1.BlobRef when the MP3 was stored
    duration_s: float = 0.0
    failure_reason: str = ""  # transcode's reason name (NO_AUDIO, ...) when the media failed
    failure_message: str = ""


class _WorkerState:
    """What one worker process keeps between tasks (set once by `init_worker`)."""

    blobs: BlobStore | None = None


def _die_with_parent() -> None:
    """A worker must not outlive the service (after `kill -9`) and finish a stale attempt.

    A watchdog thread rather than PR_SET_PDEATHSIG: that signal follows the *thread* that
    spawned the worker, and pool workers are spawned from whichever thread submitted.
    """
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def init_worker(mongo_uri: str, environ: Mapping[str, str]) -> None:
    _die_with_parent()
    init_logging("converter_svc", environ.get("LOG_LEVEL", "INFO"))
    init_tracing("converter_svc", environ, instrument_pymongo=True)
    _WorkerState.blobs = BlobStore(default_database(connect(mongo_uri, app_name="converter")))


def mp3_name(filename: str) -> str:
    stem = PurePath(filename.replace("\\", "/")).stem or "audio"
    return f"{stem}.mp3"


def convert(task: ConversionTask) -> ConversionOutcome:
    """Streams the video from GridFS through the transcoder into a new MP3 blob."""
    from converter_svc.transcode import ConversionError, transcode_to_mp3

    blobs = _WorkerState.blobs
    if blobs is None:
        raise RuntimeError("worker process was not initialised")
    tracer = trace.get_tracer(__name__)
    context = propagate.extract(dict(task.trace_carrier))
    video = storage_pb2.BlobRef.FromString(task.video_ref)
    try:
        with tracer.start_as_current_span(
            "transcode", context=context, attributes={"mp3mesh.job_id": task.job_id}
        ) as span:
            with blobs.open_reader(video) as reader:
                upload = blobs.open_upload(
                    storage_pb2.BUCKET_MP3S,
                    mp3_name(task.filename),
                    content_type=MP3_CONTENT_TYPE,
                    metadata={"owner_id": task.owner_id, "job_id": task.job_id},
                    file_id=task.mp3_file_id,
                )
                with upload:
                    try:
                        result = transcode_to_mp3(
                            reader,
                            upload,
                            bitrate_kbps=task.bitrate_kbps,
                            title=PurePath(task.filename).stem or None,
                            max_duration_s=task.max_duration_s,
                            threads=task.encoder_threads,
                        )
                    except ConversionError as exc:
                        upload.abort()
                        span.set_attribute("mp3mesh.failure_reason", exc.reason)
                        return ConversionOutcome(None, 0.0, exc.reason, str(exc))
                    ref = upload.commit()
            span.set_attributes(
                {"mp3mesh.mp3_bytes": ref.size_bytes, "mp3mesh.duration_s": result.duration_s}
            )
            return ConversionOutcome(ref.SerializeToString(), result.duration_s)
    finally:
        _flush_spans()


def _flush_spans() -> None:
    provider: Any = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush(5_000)
