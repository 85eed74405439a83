"""BlobStore against the real embedded MongoDB-wire server (nx-27017)."""

from __future__ import annotations

import hashlib
import io
import os
import random
import uuid
from pathlib import Path

import av
import pymongo
import pytest
from bson import ObjectId
from gridfs import GridFSBucket
from mp3mesh.storage.v1 import storage_pb2

from meshkit import mongo
from meshkit.blobstore import BlobNotFound, BlobStore, BlobTooLarge
from tests.fixtures.processes import REPO

pytestmark = pytest.mark.integration

MEDIA = Path(os.environ.get("MP3MESH_MEDIA_DIR", REPO.parent / "shared" / "media"))
MOOV_AT_END = MEDIA / "go-mp4__sample.mp4"
ON_NX = not os.environ.get("TEST_MONGO_URI")


def upload(
    store: BlobStore,
    data: bytes,
    *,
    bucket: str = "videos",
    job_id: str = "job-1",
    piece: int = 100_000,
    **kwargs: object,
) -> storage_pb2.BlobRef:
    with store.open_upload(
        bucket,
        "clip.mp4",
        content_type="video/mp4",
        metadata={"owner_id": "user-1", "job_id": job_id},
        **kwargs,
    ) as up:
        for i in range(0, len(data), piece):
            up.write(data[i : i + piece])
        return up.commit()


def test_round_trip_keeps_bytes_sha256_and_metadata(mongo_db):
    store = BlobStore(mongo_db, chunk_size=64 * 1024)
    data = os.urandom(300_000)  # 4 full chunks + a partial one

    ref = upload(store, data)

    assert ref.bucket == storage_pb2.BUCKET_VIDEOS
    assert ref.size_bytes == len(data)
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert ref.filename == "clip.mp4" and ref.content_type == "video/mp4"
    files_doc = mongo_db["videos.files"].find_one({"_id": ObjectId(ref.file_id)})
    assert files_doc["length"] == len(data)
    assert files_doc["metadata"] == {
        "owner_id": "user-1",
        "job_id": "job-1",
        "content_type": "video/mp4",
        "sha256": ref.sha256,
        "complete": True,
    }
    with store.open_reader(ref) as reader:
        assert reader.read() == data
    with store.open_reader("videos", ref.file_id) as reader:
        assert reader.ref == ref
    assert store.stat("videos", ref.file_id) == ref


def test_pymongo_gridfs_reads_what_the_store_wrote(mongo_db):
    """Same layout as GridFS: other GridFS tools can read (and delete) our files."""
    store = BlobStore(mongo_db, chunk_size=32 * 1024)
    data = os.urandom(100_000)
    ref = upload(store, data, bucket="mp3s")
    stream = GridFSBucket(mongo_db, "mp3s").open_download_stream(ObjectId(ref.file_id))
    assert stream.read() == data


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 0), (0, 99), (1000, 70_000), (65_535, 65_536), (199_990, 199_999), (0, 199_999)],
    ids=["first-byte", "head", "middle-across-chunks", "chunk-edge", "suffix", "whole"],
)
def test_iter_range_returns_exactly_the_range(mongo_db, start, end):
    store = BlobStore(mongo_db, chunk_size=64 * 1024, read_window_bytes=128 * 1024)
    data = os.urandom(200_000)
    ref = upload(store, data)
    with store.open_reader(ref) as reader:
        pieces = list(reader.iter_range(start, end, piece=10_000))
    assert b"".join(pieces) == data[start : end + 1]
    assert all(0 < len(p) <= 10_000 for p in pieces)


@pytest.mark.parametrize(("start", "end"), [(-1, 5), (10, 5), (0, 200_000), (200_000, 200_000)])
def test_iter_range_refuses_ranges_outside_the_blob(mongo_db, start, end):
    store = BlobStore(mongo_db)
    ref = upload(store, os.urandom(200_000))
    with store.open_reader(ref) as reader, pytest.raises(ValueError, match="outside"):
        next(reader.iter_range(start, end))


def test_random_seeks_like_pyav(mongo_db):
    store = BlobStore(mongo_db, chunk_size=16 * 1024, read_window_bytes=64 * 1024)
    data = os.urandom(500_000)
    ref = upload(store, data)
    rng = random.Random(7)
    with store.open_reader(ref) as reader:
        assert reader.seekable() and reader.readable()
        assert reader.seek(-100, io.SEEK_END) == len(data) - 100
        assert reader.read(1000) == data[-100:]  # short only at the end
        assert reader.read(10) == b""
        for _ in range(200):
            pos = rng.randrange(len(data))
            size = rng.choice([1, 188, 4096, 32_768, 100_000])
            reader.seek(pos)
            assert reader.read(size) == data[pos : pos + size]
            assert reader.tell() == min(pos + size, len(data))
        reader.seek(10)
        reader.seek(5, io.SEEK_CUR)
        buf = bytearray(20)
        assert reader.readinto(buf) == 20 and bytes(buf) == data[15:35]
        with pytest.raises(ValueError, match="negative"):
            reader.seek(-1)


def test_sequential_read_costs_one_query_per_window(mongo_db):
    store = BlobStore(mongo_db, chunk_size=16 * 1024, read_window_bytes=64 * 1024)
    data = os.urandom(16 * 1024 * 20)  # 20 chunks = 5 windows of 4 chunks
    ref = upload(store, data)
    with store.open_reader(ref) as reader:
        while reader.read(10_000):
            pass
        assert reader.queries == 5


def test_pyav_demuxes_an_mp4_whose_moov_is_at_the_end(mongo_db):
    if not MOOV_AT_END.exists():
        pytest.skip(f"{MOOV_AT_END} not present")
    raw = MOOV_AT_END.read_bytes()
    assert raw.find(b"moov") > raw.find(b"mdat") > 0  # the fixture really is not faststart
    # Tiny chunks and windows so PyAV's jumps between moov and mdat cross many windows.
    store = BlobStore(mongo_db, chunk_size=1024, read_window_bytes=2048)
    ref = upload(store, raw, piece=777)

    def decoded_samples(source: object) -> int:
        with av.open(source, mode="r") as container:
            stream = container.streams.audio[0]
            return sum(frame.samples for frame in container.decode(stream))

    expected = decoded_samples(str(MOOV_AT_END))
    with store.open_reader(ref) as reader:
        assert decoded_samples(reader) == expected > 0
        assert reader.queries > 2


def test_sixty_megabytes_read_back_by_ranges(mongo_db):
    """Over nx-27017's ~45 MB single-reply limit: the store's range reads still work."""
    store = BlobStore(mongo_db)
    block = os.urandom(1024 * 1024)
    data_sha = hashlib.sha256()
    with store.open_upload(
        "videos", "big.mp4", content_type="video/mp4", metadata={"job_id": "big"}
    ) as up:
        for i in range(60):
            piece = bytes([i]) + block[1:]
            up.write(piece)
            data_sha.update(piece)
        ref = up.commit()
    assert ref.size_bytes == 60 * 1024 * 1024

    read_sha = hashlib.sha256()
    with store.open_reader(ref) as reader:
        for piece in reader.iter_range(0, ref.size_bytes - 1, piece=1024 * 1024):
            read_sha.update(piece)
        reader.seek(59 * 1024 * 1024)
        assert reader.read(1) == bytes([59])
    assert read_sha.hexdigest() == data_sha.hexdigest() == ref.sha256

    if ON_NX:  # the quirk this design avoids: one GridOut read asks for everything at once
        stream = GridFSBucket(mongo_db, "videos").open_download_stream(ObjectId(ref.file_id))
        with pytest.raises(pymongo.errors.PyMongoError, match="larger than server max message"):
            stream.read()


def _leftovers(mongo_db, bucket: str, file_id: str) -> tuple[object, int]:
    oid = ObjectId(file_id)
    files_doc = mongo_db[f"{bucket}.files"].find_one({"_id": oid})
    chunks = list(mongo_db[f"{bucket}.chunks"].find({"files_id": oid, "n": {"$gte": 0}}))
    return files_doc, len(chunks)


def test_size_cap_raises_and_leaves_nothing(mongo_db):
    store = BlobStore(mongo_db, chunk_size=10_000)
    up = store.open_upload(
        "videos", "big.mp4", content_type="video/mp4", metadata={"job_id": "j"}, max_bytes=50_000
    )

    def write_too_much() -> None:
        with up:
            for _ in range(10):
                up.write(os.urandom(9_000))  # 4 chunks are already stored when the cap is hit

    with pytest.raises(BlobTooLarge):
        write_too_much()
    assert up.closed
    assert _leftovers(mongo_db, "videos", up.file_id) == (None, 0)
    assert store.find_by_job("videos", "j") == []


def test_size_cap_allows_exactly_max_bytes(mongo_db):
    store = BlobStore(mongo_db, chunk_size=10_000)
    ref = upload(store, os.urandom(50_000), max_bytes=50_000)
    assert ref.size_bytes == 50_000


def test_exception_inside_the_block_aborts_the_upload(mongo_db):
    store = BlobStore(mongo_db, chunk_size=10_000)
    up = store.open_upload("mp3s", "a.mp3", content_type="audio/mpeg", metadata={})

    def fail_midway() -> None:
        with up:
            up.write(os.urandom(35_000))
            raise RuntimeError("client went away")

    with pytest.raises(RuntimeError, match="client went away"):
        fail_midway()
    assert _leftovers(mongo_db, "mp3s", up.file_id) == (None, 0)
    with pytest.raises(BlobNotFound):
        store.open_reader("mp3s", up.file_id)


def test_crashed_upload_is_invisible_and_cleaned_by_its_recorded_id(mongo_db):
    store = BlobStore(mongo_db, chunk_size=10_000)
    crashed = store.open_upload(
        "mp3s", "a.mp3", content_type="audio/mpeg", metadata={"job_id": "job-9"}
    )
    crashed.write(os.urandom(45_000))  # 4 chunks stored, never committed: the process "dies"
    file_id = crashed.file_id
    assert _leftovers(mongo_db, "mp3s", file_id)[1] == 4
    assert store.find_by_job("mp3s", "job-9") == []
    assert store.stat("mp3s", file_id) is None
    with pytest.raises(BlobNotFound):
        store.open_reader("mp3s", file_id)

    assert store.delete_orphan_chunks("mp3s", file_id) == 4
    assert _leftovers(mongo_db, "mp3s", file_id) == (None, 0)
    assert store.delete_orphan_chunks("mp3s", file_id) == 0  # idempotent


def test_delete_orphan_chunks_never_touches_a_committed_blob(mongo_db):
    store = BlobStore(mongo_db)
    ref = upload(store, os.urandom(5000), bucket="mp3s", job_id="job-3")
    assert store.delete_orphan_chunks("mp3s", ref.file_id) == 0
    with store.open_reader(ref) as reader:
        assert len(reader.read()) == 5000


def test_find_by_job_lists_committed_blobs_oldest_first(mongo_db):
    store = BlobStore(mongo_db)
    first = upload(store, b"a" * 10, bucket="mp3s", job_id="job-4")
    second = upload(store, b"b" * 10, bucket="mp3s", job_id="job-4")
    upload(store, b"c" * 10, bucket="mp3s", job_id="other")
    upload(store, b"d" * 10, bucket="videos", job_id="job-4")
    assert store.find_by_job("mp3s", "job-4") == [first.file_id, second.file_id]


def test_delete_tolerates_already_gone(mongo_db):
    store = BlobStore(mongo_db, chunk_size=1000)
    ref = upload(store, os.urandom(5000))
    assert store.delete("videos", ref.file_id) is True
    assert _leftovers(mongo_db, "videos", ref.file_id) == (None, 0)
    assert store.delete("videos", ref.file_id) is False
    assert store.delete(storage_pb2.BUCKET_VIDEOS, "not-an-object-id") is False
    with pytest.raises(BlobNotFound):
        store.open_reader(ref)


def test_explicit_file_id_and_indexes(mongo_db):
    store = BlobStore(mongo_db)
    store.ensure_indexes()
    store.ensure_indexes()  # idempotent
    wanted = str(ObjectId())
    with store.open_upload(
        "mp3s", "x.mp3", content_type="audio/mpeg", metadata={}, file_id=wanted
    ) as up:
        up.write(b"id3")
        ref = up.commit()
    assert ref.file_id == wanted


def test_each_test_database_is_isolated(mongo_server):
    """nx-27017 in --data-dir mode keeps logical databases apart, GridFS included."""
    uris = [f"{mongo_server}test_iso_{uuid.uuid4().hex}" for _ in range(2)]
    clients = [mongo.connect(uri, app_name="tests") for uri in uris]
    try:
        db_a, db_b = (mongo.default_database(c) for c in clients)
        db_a["jobs"].insert_one({"job_id": "only-in-a"})
        ref = upload(BlobStore(db_a), b"payload")
        assert db_a["jobs"].find_one({"job_id": "only-in-a"}) is not None
        assert db_b["jobs"].find_one({"job_id": "only-in-a"}) is None
        assert BlobStore(db_b).stat("videos", ref.file_id) is None
        assert BlobStore(db_a).stat("videos", ref.file_id) == ref
    finally:
        for client, uri in zip(clients, uris, strict=True):
            client.drop_database(mongo.database_name(uri))
            client.close()
