"""The gRPC face: grpcurl reaches what curl reaches; uploads and downloads stream."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator

import grpc
import pytest
from mp3mesh.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from mp3mesh.jobs.v1 import jobs_pb2
from mp3mesh.storage.v1 import storage_pb2

from meshkit.blobstore import new_file_id
from tests.fixtures.processes import grpcurl
from tests.integration.gateway.conftest import PASSWORD, Gateway, User, media_files

pytestmark = pytest.mark.integration

SAMPLE = next(p for p in media_files() if p.name.startswith("media-utils"))
SERVICE = "mp3mesh.gateway.v1.GatewayService"


@pytest.fixture
def stub(gateway: Gateway) -> Iterator[gateway_pb2_grpc.GatewayServiceStub]:
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        yield gateway_pb2_grpc.GatewayServiceStub(channel)


def bearer(user: User) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {user.token}")]


def upload_messages(filename: str, data: bytes) -> Iterator[gateway_pb2.UploadVideoRequest]:
    yield gateway_pb2.UploadVideoRequest(
        metadata=gateway_pb2.UploadMetadata(filename=filename, bitrate_kbps=160)
    )
    for start in range(0, len(data), 64 * 1024):
        yield gateway_pb2.UploadVideoRequest(chunk=data[start : start + 64 * 1024])


def test_grpcurl_lists_the_services_and_calls_list_jobs(gateway: Gateway, user: User) -> None:
    listed = grpcurl("-plaintext", gateway.grpc_target, "list")
    assert listed.returncode == 0, listed.stderr
    services = set(listed.stdout.split())
    assert {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= (
        services
    )
    described = grpcurl("-plaintext", gateway.grpc_target, "describe", SERVICE)
    assert "rpc UploadVideo ( stream .mp3mesh.gateway.v1.UploadVideoRequest )" in described.stdout

    jobs = grpcurl(
        "-plaintext",
        "-H",
        f"authorization: Bearer {user.token}",
        "-d",
        '{"page_size": 5}',
        gateway.grpc_target,
        f"{SERVICE}/ListJobs",
    )
    assert jobs.returncode == 0, jobs.stderr
    json.loads(jobs.stdout)  # a JSON message (possibly {} for no jobs)

    anonymous = grpcurl("-plaintext", gateway.grpc_target, f"{SERVICE}/ListJobs")
    assert anonymous.returncode != 0
    assert "Unauthenticated" in anonymous.stderr


def test_signup_and_login_over_grpc(stub: gateway_pb2_grpc.GatewayServiceStub) -> None:
    email = f"grpc-{uuid.uuid4().hex[:8]}@example.com"
    created = stub.CreateUser(
        gateway_pb2.CreateUserRequest(email=email, password=PASSWORD), timeout=15
    )
    assert created.email == email
    token = stub.Login(gateway_pb2.LoginRequest(email=email, password=PASSWORD), timeout=15)
    assert token.token_type == "Bearer" and token.access_token
    with pytest.raises(grpc.RpcError) as caught:
        stub.Login(gateway_pb2.LoginRequest(email=email, password="wrong password!"), timeout=15)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_upload_then_download_round_trip(
    gateway: Gateway, user: User, stub: gateway_pb2_grpc.GatewayServiceStub
) -> None:
    data = SAMPLE.read_bytes()
    reply = stub.UploadVideo(upload_messages(SAMPLE.name, data), metadata=bearer(user), timeout=30)
    assert reply.state == jobs_pb2.JOB_STATE_QUEUED
    job = gateway.jobs().get(reply.job_id)
    assert job is not None and job.video.size_bytes == len(data) and job.bitrate_kbps == 160
    assert len(gateway.video_messages(reply.job_id)) == 1

    with pytest.raises(grpc.RpcError) as caught:
        list(
            stub.DownloadMp3(
                gateway_pb2.DownloadMp3Request(job_id=reply.job_id), metadata=bearer(user)
            )
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    mp3 = random.Random(3).randbytes(1_500_000)  # what a converter would have stored
    file_id = new_file_id()
    gateway.jobs().start_conversion(reply.job_id, file_id)
    with gateway.blobs().open_upload(
        storage_pb2.BUCKET_MP3S,
        "x.mp3",
        content_type="audio/mpeg",
        metadata={"owner_id": user.user_id, "job_id": reply.job_id},
        file_id=file_id,
    ) as upload:
        upload.write(mp3)
        ref = upload.commit()
    gateway.jobs().finish_done(reply.job_id, ref, 6.0)

    got = list(
        stub.DownloadMp3(gateway_pb2.DownloadMp3Request(job_id=reply.job_id), metadata=bearer(user))
    )
    meta = got[0].metadata
    assert (meta.filename, meta.content_type) == (
        SAMPLE.name.rsplit(".", 1)[0] + ".mp3",
        "audio/mpeg",
    )
    assert meta.size_bytes == len(mp3) and meta.duration_s == 6.0
    assert b"".join(message.chunk for message in got[1:]) == mp3

    window = list(
        stub.DownloadMp3(
            gateway_pb2.DownloadMp3Request(job_id=reply.job_id, offset=1_000_000, limit=300_000),
            metadata=bearer(user),
        )
    )
    assert b"".join(m.chunk for m in window[1:]) == mp3[1_000_000:1_300_000]

    view = stub.GetJob(gateway_pb2.GetJobRequest(job_id=reply.job_id), metadata=bearer(user))
    assert view.job.state == jobs_pb2.JOB_STATE_DONE and view.job.mp3_size_bytes == len(mp3)
    stub.DeleteJob(gateway_pb2.DeleteJobRequest(job_id=reply.job_id), metadata=bearer(user))
    with pytest.raises(grpc.RpcError) as gone:
        stub.GetJob(gateway_pb2.GetJobRequest(job_id=reply.job_id), metadata=bearer(user))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("messages", "code"),
    [
        ([gateway_pb2.UploadVideoRequest(chunk=b"x" * 100)], grpc.StatusCode.INVALID_ARGUMENT),
        (
            list(upload_messages("notes.mp4", b"plain text, not a video\n" * 50)),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (list(upload_messages("empty.mp4", b"")), grpc.StatusCode.INVALID_ARGUMENT),
    ],
    ids=["no-metadata", "not-media", "empty"],
)
def test_bad_grpc_uploads(
    stub: gateway_pb2_grpc.GatewayServiceStub,
    user: User,
    messages: list[gateway_pb2.UploadVideoRequest],
    code: grpc.StatusCode,
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.UploadVideo(iter(messages), metadata=bearer(user), timeout=30)
    assert caught.value.code() == code


def test_other_users_job_is_not_found_over_grpc(
    gateway: Gateway, user: User, other_user: User, stub: gateway_pb2_grpc.GatewayServiceStub
) -> None:
    data = SAMPLE.read_bytes()
    reply = stub.UploadVideo(upload_messages(SAMPLE.name, data), metadata=bearer(user), timeout=30)
    for call in (
        lambda: stub.GetJob(
            gateway_pb2.GetJobRequest(job_id=reply.job_id), metadata=bearer(other_user)
        ),
        lambda: list(
            stub.DownloadMp3(
                gateway_pb2.DownloadMp3Request(job_id=reply.job_id), metadata=bearer(other_user)
            )
        ),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
