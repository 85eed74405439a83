"""The broker failing during an upload: the video and job are kept, the job waits in the outbox."""

from __future__ import annotations

from typing import Any

import pytest
from mp3mesh.jobs.v1 import jobs_pb2
from pymongo.database import Database

from gateway_svc.auth_client import Identity
from gateway_svc.outbox import Outbox
from gateway_svc.uploads import UploadSession
from meshkit.amqp import Publisher
from meshkit.blobstore import BlobStore
from meshkit.jobs import JobStore
from tests.fixtures.processes import free_port
from tests.integration.gateway.conftest import media_files

pytestmark = pytest.mark.integration


def test_publish_failing_after_the_video_is_stored_answers_202_and_keeps_the_job_pending(
    mongo_db: Database[dict[str, Any]],
) -> None:
    dead_broker = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"  # nothing listens there
    jobs, blobs = JobStore(mongo_db), BlobStore(mongo_db)
    jobs.ensure_indexes()
    session = UploadSession(
        identity=Identity("user-1", "u@example.com"),
        filename="clip.mp4",
        bitrate_kbps=192,
        blobs=blobs,
        jobs=jobs,
        outbox=Outbox(jobs, Publisher(dead_broker, app_id="tests"), dead_broker),
        max_bytes=10 << 20,
        base_url="http://127.0.0.1:8080",
    )
    sample = next(p for p in media_files() if p.name.startswith("go-mp4"))
    session.write(sample.read_bytes())
    answer = session.finish()
    assert answer.state == jobs_pb2.JOB_STATE_QUEUED
    stored = jobs.collection.find_one({"job_id": answer.job_id})
    assert stored is not None
    assert stored["publish_pending"] is True
    job = jobs.get(answer.job_id)
    assert job is not None
    assert blobs.stat(job.video.bucket, job.video.file_id) is not None
    assert [p.job_id for p in jobs.pending_publications(older_than_s=0, limit=10)] == [
        answer.job_id
    ]
