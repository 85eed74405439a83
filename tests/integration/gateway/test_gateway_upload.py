"""Uploads end to end: signup → login → upload → QUEUED job → one ConversionRequested."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from mp3mesh.jobs.v1 import jobs_pb2
from mp3mesh.storage.v1 import storage_pb2

from tests.integration.gateway.conftest import (
    PUBLIC_BASE_URL,
    Gateway,
    User,
    assert_error,
    media_files,
)

pytestmark = pytest.mark.integration


def check_queued(gateway: Gateway, user: User, path: Path, reply: httpx.Response) -> None:
    """The 202, the stored job, the stored video and exactly one message on `video`."""
    assert reply.status_code == 202, reply.text
    body = reply.json()
    job_id = body["job_id"]
    assert body == {
        "job_id": job_id,
        "state": "JOB_STATE_QUEUED",
        "status_url": f"{PUBLIC_BASE_URL}/v1/jobs/{job_id}",
        "download_url": f"{PUBLIC_BASE_URL}/v1/jobs/{job_id}/mp3",
    }
    assert reply.headers["location"] == body["status_url"]
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()

    job = gateway.jobs().get(job_id)
    assert job is not None
    assert job.state == jobs_pb2.JOB_STATE_QUEUED
    assert (job.owner_id, job.owner_email, job.filename) == (user.user_id, user.email, path.name)
    assert job.bitrate_kbps == 192
    assert len(job.trace_id) == 32
    assert job.video.sha256 == sha256 and job.video.size_bytes == len(data)

    with gateway.blobs().open_reader(job.video) as reader:
        assert reader.read() == data

    messages = gateway.video_messages(job_id)
    assert len(messages) == 1
    message = messages[0]
    assert message.properties.type == "mp3mesh.jobs.v1.ConversionRequested"
    assert message.properties.content_type == "application/x-protobuf"
    request = jobs_pb2.ConversionRequested.FromString(message.body)
    assert request.job_id == job_id
    assert (request.owner_id, request.owner_email) == (user.user_id, user.email)
    assert request.filename == path.name and request.bitrate_kbps == 192
    assert request.video == job.video
    assert request.video.bucket == storage_pb2.BUCKET_VIDEOS
    assert request.video.sha256 == sha256
    assert "traceparent" in message.headers
    assert job.trace_id in message.headers["traceparent"]

    status = httpx.get(
        f"http://127.0.0.1:{gateway.server.http_port}/v1/jobs/{job_id}",
        headers={"Authorization": f"Bearer {user.token}"},
    )
    assert status.status_code == 200
    assert status.json()["state"] == "JOB_STATE_QUEUED"
    assert status.json()["video_size_bytes"] == str(len(data))


@pytest.mark.parametrize("path", media_files(), ids=lambda p: p.name)
def test_multipart_upload_of_each_sample_is_queued_once(
    gateway: Gateway, user: User, api: httpx.Client, path: Path
) -> None:
    with path.open("rb") as handle:
        reply = api.post("/v1/videos", files={"file": (path.name, handle, "video/mp4")})
    check_queued(gateway, user, path, reply)


def test_raw_body_upload_with_bitrate(gateway: Gateway, user: User, api: httpx.Client) -> None:
    path = MEDIA_SAMPLE
    reply = api.post(
        "/v1/videos",
        params={"filename": path.name, "bitrate_kbps": "128"},
        content=path.read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert reply.status_code == 202, reply.text
    job = gateway.jobs().get(reply.json()["job_id"])
    assert job is not None and job.bitrate_kbps == 128
    assert job.video.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(gateway.video_messages(job.job_id)) == 1


def test_raw_body_with_curls_default_content_type_is_accepted(
    gateway: Gateway, api: httpx.Client
) -> None:
    """`curl --data-binary @clip.mp4` labels the body application/x-www-form-urlencoded."""
    reply = api.post(
        "/v1/videos",
        params={"filename": MEDIA_SAMPLE.name},
        content=MEDIA_SAMPLE.read_bytes(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert reply.status_code == 202, reply.text
    job = gateway.jobs().get(reply.json()["job_id"])
    assert job is not None
    assert job.video.sha256 == hashlib.sha256(MEDIA_SAMPLE.read_bytes()).hexdigest()
    assert len(gateway.video_messages(job.job_id)) == 1


def test_streamed_raw_body_without_length(gateway: Gateway, api: httpx.Client) -> None:
    data = MEDIA_SAMPLE.read_bytes()

    def pieces() -> object:
        for start in range(0, len(data), 1000):
            yield data[start : start + 1000]

    reply = api.post(
        "/v1/videos",
        params={"filename": "chunked.mp4"},
        content=pieces(),  # type: ignore[arg-type]
        headers={"Content-Type": "video/mp4"},
    )
    assert reply.status_code == 202, reply.text
    job = gateway.jobs().get(reply.json()["job_id"])
    assert job is not None and job.video.size_bytes == len(data)


MEDIA_SAMPLE = next(p for p in media_files() if p.name.startswith("go-mp4"))


def test_upload_without_token_is_401(gateway: Gateway) -> None:
    with gateway.client() as client:
        reply = client.post("/v1/videos", files={"file": ("a.mp4", MEDIA_SAMPLE.read_bytes())})
    assert_error(reply, 401, 16, "missing credentials")
    assert reply.headers["www-authenticate"] == 'Bearer realm="mp3mesh"'
