"""A real converter (in-process or as `python -m converter_svc`) on real RabbitMQ and nx-27017."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mp3mesh.jobs.v1 import jobs_pb2
from mp3mesh.storage.v1 import storage_pb2
from pymongo.database import Database

from converter_svc.config import ConverterConfig
from converter_svc.server import ConverterServer, serve
from meshkit.amqp import QUEUE_VIDEO, Publisher
from meshkit.blobstore import BlobStore
from meshkit.jobs import JobStore
from tests.fixtures.media import generate_video
from tests.fixtures.processes import health_status, wait_until

FINISHED = (jobs_pb2.JOB_STATE_DONE, jobs_pb2.JOB_STATE_FAILED)


def converter_env(mongo_uri: str, rabbit_url: str, **extra: str) -> dict[str, str]:
    return {
        "MONGO_URI": mongo_uri,
        "AMQP_URL": rabbit_url,
        "GRPC_PORT": "0",
        "BIND_HOST": "127.0.0.1",
        "CONVERTER_CONCURRENCY": "2",
        "DELIVERY_LIMIT": "2",
        "DRAIN_TIMEOUT_S": "60",
        **extra,
    }


@pytest.fixture
def start_converter(mongo_uri: str, rabbit_url: str) -> Iterator[Any]:
    started: list[ConverterServer] = []

    def start(**extra: str) -> ConverterServer:
        server = serve(ConverterConfig.from_env(converter_env(mongo_uri, rabbit_url, **extra)))
        started.append(server)
        wait_until(
            lambda: health_status(f"127.0.0.1:{server.port}") == "SERVING",
            timeout_s=30,
            what="converter SERVING",
        )
        return server

    yield start
    for server in started:
        server.stop(5)


class JobSubmitter:
    """Does what the gateway does for an upload: store the video, create the job, publish."""

    def __init__(self, db: Database[dict[str, Any]], amqp_url: str) -> None:
        self.jobs = JobStore(db)
        self.blobs = BlobStore(db)
        self.jobs.ensure_indexes()
        self._publisher = Publisher(amqp_url, app_id="tests", declare=True, delivery_limit=2)

    def submit(self, path: Path, *, owner: str = "owner-1", bitrate: int = 192) -> str:
        job_id = uuid.uuid4().hex
        with (
            self.blobs.open_upload(
                storage_pb2.BUCKET_VIDEOS,
                path.name,
                content_type="application/octet-stream",
                metadata={"owner_id": owner, "job_id": job_id},
            ) as upload,
            path.open("rb") as source,
        ):
            while piece := source.read(1 << 20):
                upload.write(piece)
            video = upload.commit()
        assert video.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        job = jobs_pb2.Job(
            job_id=job_id,
            owner_id=owner,
            owner_email=f"{owner}@example.com",
            filename=path.name,
            state=jobs_pb2.JOB_STATE_QUEUED,
            bitrate_kbps=bitrate,
            video=video,
        )
        self.jobs.create(job)
        self.publish(job_id)
        return job_id

    def publish(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        assert job is not None
        self._publisher.publish(QUEUE_VIDEO, JobStore.requested_message(job), message_id=job_id)

    def wait_finished(self, job_id: str, timeout_s: float = 120) -> jobs_pb2.Job:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            job = self.jobs.get(job_id)
            if job is not None and job.state in FINISHED:
                return job
            time.sleep(0.2)
        raise AssertionError(
            f"job {job_id} did not finish in {timeout_s}s: {self.jobs.get(job_id)}"
        )

    def close(self) -> None:
        self._publisher.close()


@pytest.fixture
def submitter(mongo_db: Database[dict[str, Any]], rabbit_url: str) -> Iterator[JobSubmitter]:
    submitter = JobSubmitter(mongo_db, rabbit_url)
    yield submitter
    submitter.close()


@pytest.fixture(scope="session")
def ten_minute_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_video(tmp_path_factory.mktemp("media") / "ten-minutes.mp4", seconds=600)
