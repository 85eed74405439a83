"""The caller's view of a stored job: what `jobs.v1.Job` may show outside the mesh.

Owner ids, the owner's email, GridFS ids and checksums stay inside; sizes, duration, the
failure, absolute URLs and the trace id (to find the upload in Jaeger) go out.
"""

from __future__ import annotations

from mp3mesh.gateway.v1 import gateway_pb2
from mp3mesh.jobs.v1 import jobs_pb2


def status_url(base_url: str, job_id: str) -> str:
    return f"{base_url}/v1/jobs/{job_id}"


def download_url(base_url: str, job_id: str) -> str:
    return f"{base_url}/v1/jobs/{job_id}/mp3"


def public_job(job: jobs_pb2.Job, base_url: str) -> gateway_pb2.Job:
    view = gateway_pb2.Job(
        job_id=job.job_id,
        filename=job.filename,
        state=job.state,
        bitrate_kbps=job.bitrate_kbps,
        video_size_bytes=job.video.size_bytes if job.HasField("video") else 0,
        mp3_size_bytes=job.mp3.size_bytes if job.HasField("mp3") else 0,
        mp3_duration_s=job.mp3_duration_s,
        status_url=status_url(base_url, job.job_id),
        download_url=download_url(base_url, job.job_id),
        trace_id=job.trace_id,
    )
    if job.HasField("failure"):
        view.failure.reason = job.failure.reason
        view.failure.message = job.failure.message
    for field in ("create_time", "update_time", "finish_time"):
        if job.HasField(field):
            getattr(view, field).CopyFrom(getattr(job, field))
    return view
