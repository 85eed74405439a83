"""Job document mapping, page tokens and queue payloads, without a database."""

from __future__ import annotations

import base64
import datetime

import pytest
from mp3mesh.jobs.v1 import jobs_pb2
from mp3mesh.storage.v1 import storage_pb2

from meshkit import jobs
from meshkit.jobs import InvalidPageToken, JobStore

WHEN = datetime.datetime(2026, 3, 4, 5, 6, 7, 123000, tzinfo=datetime.UTC)
MP3 = storage_pb2.BlobRef(
    bucket=storage_pb2.BUCKET_MP3S, file_id="f" * 24, size_bytes=9, sha256="0" * 64
)


def test_document_round_trip_uses_enum_names_and_datetimes():
    job = jobs_pb2.Job(
        job_id="j", owner_id="o", owner_email="o@x", filename="a.mp4", bitrate_kbps=128,
        video=storage_pb2.BlobRef(bucket=storage_pb2.BUCKET_VIDEOS, file_id="a" * 24),
        trace_id="t" * 32,
    )  # fmt: skip
    doc = jobs.job_to_doc(job, WHEN)
    assert doc["state"] == "JOB_STATE_QUEUED"
    assert doc["video"]["bucket"] == "BUCKET_VIDEOS"
    assert doc["publish_pending"] is True
    doc.update(
        state="JOB_STATE_FAILED",
        failure={"reason": "FAILURE_REASON_TOO_LONG", "message": "over 4 h"},
        finish_time=WHEN.replace(tzinfo=None),  # a naive datetime is read as UTC
    )
    back = jobs.job_from_doc(doc)
    assert back.state == jobs_pb2.JOB_STATE_FAILED
    assert back.failure.reason == jobs_pb2.FAILURE_REASON_TOO_LONG
    assert back.create_time.ToDatetime(datetime.UTC) == WHEN
    assert back.finish_time.ToDatetime(datetime.UTC) == WHEN
    assert back.video == job.video and back.trace_id == job.trace_id


def test_a_timestamp_stored_as_text_is_an_error_not_a_guess():
    doc = jobs.job_to_doc(jobs_pb2.Job(job_id="j", owner_id="o"), WHEN)
    doc["update_time"] = "2026-03-04 05:06:07"  # what a bare $set of a datetime gives on nx
    with pytest.raises(TypeError, match="update_time"):
        jobs.job_from_doc(doc)


def test_page_token_round_trip_and_forgeries():
    millis = jobs._millis(WHEN)
    token = jobs._encode_token(millis, "job-7")
    assert "=" not in token
    assert jobs._decode_token(token) == (millis, "job-7")
    forged = [
        "%%%",
        base64.urlsafe_b64encode(b"[1,2]").decode(),
        base64.urlsafe_b64encode(b'{"t": 1.5, "j": "x"}').decode(),
        base64.urlsafe_b64encode(b'{"t": 1}').decode(),
        base64.urlsafe_b64encode(b'{"t": 99999999999999999, "j": "x"}').decode(),
    ]
    for bad in forged:
        with pytest.raises(InvalidPageToken):
            jobs._decode_token(bad)


def test_finished_message_for_each_state():
    done = jobs_pb2.Job(
        job_id="j", owner_id="o", owner_email="o@x", filename="a.mp4", bitrate_kbps=256,
        state=jobs_pb2.JOB_STATE_DONE, mp3=MP3, mp3_duration_s=3.5,
    )  # fmt: skip
    done.finish_time.FromDatetime(WHEN)
    message = JobStore.finished_message(done)
    assert message.WhichOneof("outcome") == "mp3"
    assert (message.mp3.mp3, message.mp3.duration_s, message.mp3.bitrate_kbps) == (MP3, 3.5, 256)
    assert message.finish_time == done.finish_time

    failed = jobs_pb2.Job(
        job_id="j",
        state=jobs_pb2.JOB_STATE_FAILED,
        failure=jobs_pb2.Failure(reason=jobs_pb2.FAILURE_REASON_CORRUPT_MEDIA, message="bad"),
    )
    assert JobStore.finished_message(failed).failure.message == "bad"

    for state in (jobs_pb2.JOB_STATE_QUEUED, jobs_pb2.JOB_STATE_CONVERTING):
        with pytest.raises(ValueError, match="is JOB_STATE_"):
            JobStore.finished_message(jobs_pb2.Job(job_id="j", state=state))


def test_create_requires_ids():
    store = JobStore({"jobs": object()})  # never reached
    with pytest.raises(ValueError, match="job_id and owner_id"):
        store.create(jobs_pb2.Job(job_id="j"))
