"""converter_svc end to end on its queues: real RabbitMQ, real nx-27017, real media."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from mp3mesh.jobs.v1 import jobs_pb2
from mp3mesh.storage.v1 import storage_pb2

from meshkit.amqp import QUEUE_MP3
from tests.fixtures.media import audio_duration_s, ffprobe, generate_video, shared_samples
from tests.fixtures.processes import free_port, grpcurl, health_status, start_module, wait_until
from tests.fixtures.rabbit import close_connections, drain_queue, queue_depth
from tests.integration.converter.conftest import JobSubmitter, converter_env

pytestmark = pytest.mark.integration

EXPECTED_FAILURES = {
    "mp4parse__white.mp4": jobs_pb2.FAILURE_REASON_NO_AUDIO,
    "file-type__fixture-corrupt.mkv": jobs_pb2.FAILURE_REASON_CORRUPT_MEDIA,
}


def stored_mp3(submitter: JobSubmitter, job: jobs_pb2.Job, target: Path) -> Path:
    with submitter.blobs.open_reader(job.mp3) as reader:
        target.write_bytes(reader.read())
    return target


def finished_messages(rabbit_url: str) -> list[jobs_pb2.ConversionFinished]:
    return [
        jobs_pb2.ConversionFinished.FromString(message.body)
        for message in drain_queue(rabbit_url, QUEUE_MP3)
    ]


def test_every_shared_sample_converts_or_fails_with_its_reason(
    start_converter: Any, submitter: JobSubmitter, rabbit_url: str, tmp_path: Path
) -> None:
    start_converter()
    samples = shared_samples()
    job_ids = {sample.path.name: submitter.submit(sample.path) for sample in samples}
    for sample in samples:
        job = submitter.wait_finished(job_ids[sample.path.name])
        expected_failure = EXPECTED_FAILURES.get(sample.path.name)
        if expected_failure is not None:
            assert job.state == jobs_pb2.JOB_STATE_FAILED, sample.path.name
            assert job.failure.reason == expected_failure, job.failure
            assert job.failure.message
            continue
        assert job.state == jobs_pb2.JOB_STATE_DONE, (sample.path.name, job.failure)
        mp3 = stored_mp3(submitter, job, tmp_path / f"{sample.path.stem}.mp3")
        streams = ffprobe(mp3)["streams"]
        assert [s["codec_name"] for s in streams] == ["mp3"]  # type: ignore[index]
        source = audio_duration_s(sample.path)
        assert abs(audio_duration_s(mp3) - source) <= 0.05, sample.path.name
        assert abs(job.mp3_duration_s - source) <= 0.05
        assert job.mp3.size_bytes == mp3.stat().st_size
    outcomes = {
        message.job_id: message.WhichOneof("outcome") for message in finished_messages(rabbit_url)
    }
    assert outcomes == {
        job_id: "failure" if name in EXPECTED_FAILURES else "mp3"
        for name, job_id in job_ids.items()
    }


def test_ten_minute_video_with_moov_at_the_end_converts(
    start_converter: Any, submitter: JobSubmitter, ten_minute_video: Path, tmp_path: Path
) -> None:
    start_converter()
    job = submitter.wait_finished(submitter.submit(ten_minute_video), timeout_s=300)
    assert job.state == jobs_pb2.JOB_STATE_DONE, job.failure
    mp3 = stored_mp3(submitter, job, tmp_path / "ten.mp3")
    assert abs(audio_duration_s(mp3) - audio_duration_s(ten_minute_video)) <= 0.05
    assert int(ffprobe(mp3)["format"]["bit_rate"]) // 1000 in range(188, 197)  # type: ignore[index]


def test_too_long_media_fails_with_its_reason(
    start_converter: Any, submitter: JobSubmitter, tmp_path: Path
) -> None:
    start_converter(MAX_DURATION_S="5")
    video = generate_video(tmp_path / "eight.mp4", seconds=8)
    job = submitter.wait_finished(submitter.submit(video))
    assert job.failure.reason == jobs_pb2.FAILURE_REASON_TOO_LONG


def test_redelivered_finished_job_republishes_without_a_second_mp3(
    start_converter: Any, submitter: JobSubmitter, rabbit_url: str
) -> None:
    start_converter()
    sample = shared_samples()[0].path
    job_id = submitter.submit(sample)
    first = submitter.wait_finished(job_id)
    wait_until(lambda: queue_depth(rabbit_url, QUEUE_MP3) == 1, timeout_s=10, what="outcome")
    submitter.publish(job_id)  # as if the ack had been lost
    wait_until(lambda: queue_depth(rabbit_url, QUEUE_MP3) == 2, timeout_s=20, what="re-publish")
    messages = finished_messages(rabbit_url)
    assert [m.mp3.mp3.file_id for m in messages] == [first.mp3.file_id] * 2
    assert submitter.blobs.find_by_job(storage_pb2.BUCKET_MP3S, job_id) == [first.mp3.file_id]


def test_missing_video_is_retried_then_dead_lettered_and_the_job_says_so(
    start_converter: Any, submitter: JobSubmitter, rabbit_url: str
) -> None:
    start_converter()
    job_id = submitter.submit(shared_samples()[0].path)
    job = submitter.wait_finished(job_id)
    # A second job pointing at a video that is gone: an internal, not a media, problem.
    broken = jobs_pb2.Job()
    broken.CopyFrom(job)
    broken.job_id = "f" * 32
    broken.state = jobs_pb2.JOB_STATE_QUEUED
    broken.video.file_id = "0" * 24
    broken.ClearField("mp3")
    submitter.jobs.create(broken)
    submitter.publish(broken.job_id)
    failed = submitter.wait_finished(broken.job_id, timeout_s=60)
    assert failed.failure.reason == jobs_pb2.FAILURE_REASON_INTERNAL
    assert "gave up" in failed.failure.message
    wait_until(lambda: queue_depth(rabbit_url, "video.dead") == 1, timeout_s=20, what="dead")


def test_broker_connections_closed_mid_run_every_job_still_finishes(
    start_converter: Any, submitter: JobSubmitter, rabbit_url: str, tmp_path: Path
) -> None:
    server = start_converter()
    videos = [generate_video(tmp_path / f"v{i}.mp4", seconds=20 + i) for i in range(4)]
    job_ids = [submitter.submit(video) for video in videos]
    wait_until(lambda: server.consumer.busy > 0, timeout_s=30, what="a conversion running")
    assert close_connections(rabbit_url) >= 1
    for job_id in job_ids:
        assert submitter.wait_finished(job_id, timeout_s=180).state == jobs_pb2.JOB_STATE_DONE
    assert server.consumer.sessions >= 2
    for job_id in job_ids:
        assert len(submitter.blobs.find_by_job(storage_pb2.BUCKET_MP3S, job_id)) == 1


def test_kill_9_mid_conversion_then_restart_yields_exactly_one_mp3(
    submitter: JobSubmitter, mongo_uri: str, rabbit_url: str, ten_minute_video: Path
) -> None:
    port = free_port()
    env = converter_env(mongo_uri, rabbit_url, GRPC_PORT=str(port), CONVERTER_CONCURRENCY="1")
    first = start_module("converter_svc", env)
    try:
        job_id = submitter.submit(ten_minute_video)
        wait_until(
            lambda: (
                (job := submitter.jobs.get(job_id)) is not None
                and job.state == jobs_pb2.JOB_STATE_CONVERTING
            ),
            timeout_s=60,
            what="conversion started",
        )
        time.sleep(1.0)  # let it write some of the MP3
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    second = start_module("converter_svc", env)
    try:
        job = submitter.wait_finished(job_id, timeout_s=300)
        assert job.state == jobs_pb2.JOB_STATE_DONE, job.failure
        assert submitter.blobs.find_by_job(storage_pb2.BUCKET_MP3S, job_id) == [job.mp3.file_id]
        assert submitter.jobs.attempts(job_id) == 2
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0


def test_grpcurl_lists_health_and_reflection_on_the_converter(start_converter: Any) -> None:
    server = start_converter()
    result = grpcurl("-plaintext", f"127.0.0.1:{server.port}", "list")
    assert result.returncode == 0, result.stderr
    assert {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= set(
        result.stdout.split()
    )
    assert health_status(f"127.0.0.1:{server.port}", "liveness") == "SERVING"
