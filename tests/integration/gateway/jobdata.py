"""Jobs as the converter leaves them, made directly through JobStore and BlobStore."""

from __future__ import annotations

import random
import time
import uuid

from mp3mesh.jobs.v1 import jobs_pb2
from mp3mesh.storage.v1 import storage_pb2

from meshkit.blobstore import new_file_id
from tests.integration.gateway.conftest import Gateway, User, media_files

SAMPLE = next(p for p in media_files() if p.name.startswith("go-mp4"))
# Over three 1 MiB GridFS chunks, so ranges cross chunk boundaries.
MP3 = random.Random(7).randbytes(3 * 1024 * 1024 + 12_345)
SIZE = len(MP3)


def stored_job(
    gateway: Gateway, user: User, filename: str, *, created_s_ago: int = 0
) -> jobs_pb2.Job:
    """A QUEUED job with a real stored video, created the way the upload creates one."""
    blobs, jobs = gateway.blobs(), gateway.jobs()
    job_id = uuid.uuid4().hex
    with blobs.open_upload(
        storage_pb2.BUCKET_VIDEOS,
        filename,
        content_type="video/mp4",
        metadata={"owner_id": user.user_id, "job_id": job_id},
    ) as upload:
        upload.write(SAMPLE.read_bytes())
        video = upload.commit()
    job = jobs_pb2.Job(
        job_id=job_id,
        owner_id=user.user_id,
        owner_email=user.email,
        filename=filename,
        state=jobs_pb2.JOB_STATE_QUEUED,
        bitrate_kbps=192,
    )
    job.video.CopyFrom(video)
    if created_s_ago:
        job.create_time.FromSeconds(int(time.time()) - created_s_ago)
    jobs.create(job)
    jobs.mark_published(job_id)
    return job


def done_job(gateway: Gateway, user: User, filename: str = "holiday.final.mov") -> str:
    """A DONE job whose MP3 (`MP3`) is stored through BlobStore, as the converter would."""
    job = stored_job(gateway, user, filename)
    blobs, jobs = gateway.blobs(), gateway.jobs()
    file_id = new_file_id()
    assert jobs.start_conversion(job.job_id, file_id) is not None
    with blobs.open_upload(
        storage_pb2.BUCKET_MP3S,
        "out.mp3",
        content_type="audio/mpeg",
        metadata={"owner_id": user.user_id, "job_id": job.job_id},
        file_id=file_id,
    ) as upload:
        upload.write(MP3)
        mp3 = upload.commit()
    assert jobs.finish_done(job.job_id, mp3, 12.5) is not None
    return job.job_id
