"""JobStore transitions against the real embedded MongoDB-wire server (nx-27017)."""

from __future__ import annotations

import datetime
import threading
import time

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from mp3mesh.jobs.v1 import jobs_pb2
from mp3mesh.storage.v1 import storage_pb2

from meshkit.jobs import InvalidPageToken, JobAlreadyExists, JobStore

pytestmark = pytest.mark.integration

VIDEO = storage_pb2.BlobRef(
    bucket=storage_pb2.BUCKET_VIDEOS,
    file_id="65a1b2c3d4e5f60718293a4b",
    filename="holiday.mp4",
    content_type="video/mp4",
    size_bytes=123_456,
    sha256="ab" * 32,
)
MP3 = storage_pb2.BlobRef(
    bucket=storage_pb2.BUCKET_MP3S,
    file_id="65a1b2c3d4e5f60718293a4c",
    filename="holiday.mp3",
    content_type="audio/mpeg",
    size_bytes=4_000,
    sha256="cd" * 32,
)
NO_AUDIO = jobs_pb2.Failure(reason=jobs_pb2.FAILURE_REASON_NO_AUDIO, message="no audio track")


def new_job(job_id: str = "job-1", owner: str = "user-1", **fields: object) -> jobs_pb2.Job:
    return jobs_pb2.Job(
        job_id=job_id,
        owner_id=owner,
        owner_email=f"{owner}@example.com",
        filename="holiday.mp4",
        bitrate_kbps=192,
        video=VIDEO,
        trace_id="0af7651916cd43dd8448eb211c80319c",
        **fields,
    )


@pytest.fixture
def store(mongo_db) -> JobStore:
    jobs = JobStore(mongo_db)
    jobs.ensure_indexes()
    return jobs


def test_create_and_read_back(store):
    created = store.create(new_job())
    got = store.get("job-1")
    assert got == created
    assert got.state == jobs_pb2.JOB_STATE_QUEUED
    assert got.video == VIDEO
    assert got.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert got.HasField("create_time") and got.create_time == got.update_time
    assert abs(got.create_time.ToSeconds() - time.time()) < 5
    raw = store.collection.find_one({"job_id": "job-1"})
    assert raw["state"] == "JOB_STATE_QUEUED"
    assert raw["video"]["bucket"] == "BUCKET_VIDEOS"
    assert raw["publish_pending"] is True
    assert isinstance(raw["create_time"], datetime.datetime)


def test_duplicate_job_id_is_refused_by_the_unique_index(store):
    store.ensure_indexes()  # a second call is harmless
    store.create(new_job())
    with pytest.raises(JobAlreadyExists):
        store.create(new_job(owner="someone-else"))
    assert store.collection.count_documents({"job_id": "job-1"}) == 1


def test_another_owners_job_is_invisible(store):
    store.create(new_job())
    assert store.get_for_owner("job-1", "user-1") is not None
    assert store.get_for_owner("job-1", "user-2") is None
    assert store.get_for_owner("nope", "user-1") is None
    assert store.delete_for_owner("job-1", "user-2") is None
    assert store.get("job-1") is not None
    deleted = store.delete_for_owner("job-1", "user-1")
    assert deleted is not None and deleted.video == VIDEO
    assert store.get("job-1") is None


def test_outbox_lists_unpublished_jobs_until_marked(store):
    old = Timestamp()
    old.FromDatetime(datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5))
    store.create(new_job("old", create_time=old))
    store.create(new_job("fresh"))
    store.create(new_job("started", create_time=old))
    store.start_conversion("started", "f1")

    assert [j.job_id for j in store.pending_publications(older_than_s=60, limit=10)] == ["old"]
    assert {j.job_id for j in store.pending_publications(older_than_s=0, limit=10)} == {
        "old",
        "fresh",
    }
    assert store.mark_published("old") is True
    assert store.mark_published("old") is False
    assert [j.job_id for j in store.pending_publications(older_than_s=0, limit=10)] == ["fresh"]


def test_start_conversion_from_queued_and_takeover(store):
    store.create(new_job())
    first = store.start_conversion("job-1", "mp3-a")
    assert first is not None and first.state == jobs_pb2.JOB_STATE_CONVERTING
    assert first.update_time.ToNanoseconds() >= first.create_time.ToNanoseconds()
    # a duplicate first delivery must not run beside the live attempt...
    assert store.start_conversion("job-1", "mp3-x", allow_takeover=False) is None
    # ...but a redelivery after a crash takes the job over
    second = store.start_conversion("job-1", "mp3-b")
    assert second is not None and second.state == jobs_pb2.JOB_STATE_CONVERTING
    assert store.attempts("job-1") == 2
    assert store.attempt_file_ids("job-1") == ["mp3-a", "mp3-b"]
    raw = store.collection.find_one({"job_id": "job-1"})
    assert raw["attempt_file_id"] == "mp3-b"
    assert "publish_pending" not in raw
    assert isinstance(raw["update_time"], datetime.datetime)


def test_start_conversion_on_finished_or_deleted_job_is_none(store):
    store.create(new_job("done"))
    store.start_conversion("done", "mp3-a")
    store.finish_done("done", MP3, 61.5)
    assert store.start_conversion("done", "mp3-b") is None
    store.create(new_job("failed"))
    store.finish_failed("failed", NO_AUDIO)
    assert store.start_conversion("failed", "mp3-c") is None
    assert store.start_conversion("missing", "mp3-d") is None
    assert store.get("done").state == jobs_pb2.JOB_STATE_DONE
    assert store.attempt_file_ids("done") == ["mp3-a"]


def test_finish_done_is_atomic_and_idempotent(store):
    store.create(new_job())
    store.start_conversion("job-1", MP3.file_id)
    done = store.finish_done("job-1", MP3, 61.5)
    assert done.state == jobs_pb2.JOB_STATE_DONE
    assert done.mp3 == MP3 and done.mp3_duration_s == 61.5
    assert done.HasField("finish_time") and not done.HasField("failure")

    other = storage_pb2.BlobRef()
    other.CopyFrom(MP3)
    other.file_id = "65a1b2c3d4e5f60718293aff"
    again = store.finish_done("job-1", other, 99.0)
    assert again == done  # unchanged: the second MP3 lost, and its writer can tell
    failed = store.finish_failed("job-1", NO_AUDIO)
    assert failed == done
    assert store.finish_done("missing", MP3, 1.0) is None
    raw = store.collection.find_one({"job_id": "job-1"})
    assert isinstance(raw["finish_time"], datetime.datetime)
    assert "attempt_file_id" not in raw


def test_finish_failed_from_queued(store):
    store.create(new_job())
    failed = store.finish_failed("job-1", NO_AUDIO)
    assert failed.state == jobs_pb2.JOB_STATE_FAILED
    assert failed.failure == NO_AUDIO
    assert not failed.HasField("mp3")
    assert store.finish_done("job-1", MP3, 1.0).state == jobs_pb2.JOB_STATE_FAILED


def test_finished_message_is_the_same_each_time(store):
    store.create(new_job("ok"))
    done = store.finish_done("ok", MP3, 12.25)
    message = JobStore.finished_message(done)
    assert message.WhichOneof("outcome") == "mp3"
    assert message.mp3.mp3 == MP3
    assert message.mp3.duration_s == 12.25 and message.mp3.bitrate_kbps == 192
    assert message.owner_email == "user-1@example.com" and message.filename == "holiday.mp4"
    assert message.finish_time == done.finish_time
    assert JobStore.finished_message(store.get("ok")) == message

    store.create(new_job("bad"))
    failed = JobStore.finished_message(store.finish_failed("bad", NO_AUDIO))
    assert failed.WhichOneof("outcome") == "failure" and failed.failure == NO_AUDIO

    store.create(new_job("queued"))
    with pytest.raises(ValueError, match="JOB_STATE_QUEUED"):
        JobStore.finished_message(store.get("queued"))


def test_claim_notification_race_has_exactly_one_winner(store):
    for n in range(5):
        store.create(new_job(f"race-{n}"))
        store.finish_done(f"race-{n}", MP3, 1.0)
        barrier = threading.Barrier(8)
        winners: list[str] = []

        def claim(name: str, job_id: str = f"race-{n}", barrier=barrier, winners=winners) -> None:
            barrier.wait()
            if store.claim_notification(job_id, name, lease_s=60) is not None:
                winners.append(name)

        threads = [threading.Thread(target=claim, args=(f"c{i}",)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(winners) == 1
        assert store.notification_state(f"race-{n}").claimer == winners[0]


def test_start_conversion_race_without_takeover_has_one_winner(store):
    store.create(new_job())
    barrier = threading.Barrier(6)
    winners: list[str] = []

    def start(name: str) -> None:
        barrier.wait()
        if store.start_conversion("job-1", name, allow_takeover=False) is not None:
            winners.append(name)

    threads = [threading.Thread(target=start, args=(f"mp3-{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert store.attempt_file_ids("job-1") == winners


def test_claim_lifecycle(store):
    store.create(new_job())
    assert store.claim_notification("job-1", "a", 60) is None  # not finished yet
    store.finish_done("job-1", MP3, 1.0)

    claimed = store.claim_notification("job-1", "a", 60)
    assert claimed is not None and claimed.owner_email == "user-1@example.com"
    assert store.claim_notification("job-1", "b", 60) is None  # live claim
    assert store.release_claim("job-1", "b") is False  # not b's to release
    assert store.release_claim("job-1", "a") is True
    assert store.claim_notification("job-1", "b", 0.2) is not None
    time.sleep(0.3)
    assert store.claim_notification("job-1", "c", 60) is not None  # b's lease expired
    assert store.mark_notified("job-1", "c") is True
    assert store.mark_notified("job-1", "c") is False
    assert store.claim_notification("job-1", "d", 60) is None  # already notified

    job = store.get("job-1")
    assert job.HasField("notify_time")
    state = store.notification_state("job-1")
    assert state.notified and state.claimer is None and state.attempts == 3


def test_notification_failures(store):
    store.create(new_job("transient"))
    store.finish_failed("transient", NO_AUDIO)
    assert store.claim_notification("transient", "a", 60) is not None
    assert store.record_notification_failure("transient", "421 try later", False, claimer="a")
    state = store.notification_state("transient")
    assert state.error == "421 try later" and state.claimer is None
    assert not state.failed_permanently
    assert store.claim_notification("transient", "b", 60) is not None  # retry allowed

    store.create(new_job("permanent"))
    store.finish_failed("permanent", NO_AUDIO)
    assert store.claim_notification("permanent", "a", 60) is not None
    assert store.record_notification_failure("permanent", "550 no such user", True)
    state = store.notification_state("permanent")
    assert state.failed_permanently and state.error == "550 no such user"
    assert store.claim_notification("permanent", "b", 60) is None  # never again
    assert store.record_notification_failure("missing", "x", True) is False


def test_list_for_owner_pages_newest_first(store):
    base = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    expected = []
    for n in range(23):
        ts = Timestamp()
        ts.FromDatetime(base + datetime.timedelta(seconds=n // 3))  # ties on create_time
        store.create(new_job(f"job-{n:02d}", create_time=ts))
        expected.append((n // 3, f"job-{n:02d}"))
    store.create(new_job("foreign", owner="user-2"))
    expected_ids = [job_id for _, job_id in sorted(expected, reverse=True)]

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        jobs, token = store.list_for_owner("user-1", page_size=10, page_token=token)
        pages += 1
        assert all(j.owner_id == "user-1" for j in jobs)
        seen += [j.job_id for j in jobs]
        if not token:
            break
    assert pages == 3
    assert seen == expected_ids

    only, next_token = store.list_for_owner("user-2")
    assert [j.job_id for j in only] == ["foreign"] and next_token == ""
    assert store.list_for_owner("user-3") == ([], "")


def test_list_for_owner_rejects_a_forged_token(store):
    with pytest.raises(InvalidPageToken):
        store.list_for_owner("user-1", page_token="not base64 json!")
    with pytest.raises(InvalidPageToken):
        store.list_for_owner("user-1", page_token="eyJ0IjogImEifQ")  # {"t": "a"}


def test_pages_do_not_repeat_jobs_created_within_one_second(store):
    for index in range(7):
        store.create(jobs_pb2.Job(job_id=f"same-second-{index}", owner_id="fast"))
    seen: list[str] = []
    token = ""
    while True:
        page, token = store.list_for_owner("fast", page_size=3, page_token=token)
        seen += [job.job_id for job in page]
        if not token:
            break
    assert sorted(seen) == [f"same-second-{index}" for index in range(7)]
    assert len(seen) == len(set(seen))


def test_only_the_attempt_that_owns_the_job_can_finish_it(store):
    store.create(new_job("owned"))
    old = MP3.file_id
    new = "65a1b2c3d4e5f60718293a4d"
    store.start_conversion("owned", old)
    store.start_conversion("owned", new)  # redelivery took the job over
    late = store.finish_done("owned", MP3, 1.0, attempt_file_id=old)
    assert late is not None and late.state == jobs_pb2.JOB_STATE_CONVERTING
    refused = store.finish_failed("owned", NO_AUDIO, attempt_file_id=old)
    assert refused is not None and refused.state == jobs_pb2.JOB_STATE_CONVERTING
    winner = storage_pb2.BlobRef()
    winner.CopyFrom(MP3)
    winner.file_id = new
    done = store.finish_done("owned", winner, 1.0, attempt_file_id=new)
    assert done is not None and done.state == jobs_pb2.JOB_STATE_DONE
    assert done.mp3.file_id == new


def test_only_the_claimer_can_renew_its_claim_and_not_after_the_mail_is_recorded(store):
    store.create(new_job("renew"))
    store.start_conversion("renew", "f1")
    store.finish_done("renew", MP3, 1.0)
    assert store.claim_notification("renew", "worker-a", lease_s=0.05) is not None
    assert store.renew_claim("renew", "worker-a", lease_s=60)
    assert not store.renew_claim("renew", "worker-b", lease_s=60)
    time.sleep(0.1)  # past the first, short lease: the renewal is what keeps it
    assert store.claim_notification("renew", "worker-b", lease_s=60) is None
    assert store.mark_notified("renew", "worker-a")
    assert not store.renew_claim("renew", "worker-a", lease_s=60)
