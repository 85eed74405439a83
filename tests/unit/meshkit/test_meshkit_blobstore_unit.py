"""BlobStore logic over in-memory fake collections: chunking, hashing, caps, range windows."""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from typing import Any

import pytest
from bson import ObjectId
from mp3mesh.storage.v1 import storage_pb2

from meshkit import blobstore
from meshkit.blobstore import BlobNotFound, BlobStore, BlobTooLarge, CorruptBlob


@dataclass
class _Result:
    deleted_count: int


def _get(doc: dict[str, Any], dotted: str) -> Any:
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    for key, cond in query.items():
        value = _get(doc, key)
        if isinstance(cond, dict):
            if "$gte" in cond and not value >= cond["$gte"]:
                return False
            if "$lte" in cond and not value <= cond["$lte"]:
                return False
        elif value != cond:
            return False
    return True


class FakeCollection:
    """Just the pymongo calls BlobStore makes; records every find for assertions."""

    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []
        self.finds: list[dict[str, Any]] = []

    def insert_one(self, doc: dict[str, Any]) -> None:
        doc.setdefault("_id", ObjectId())
        self.docs.append(dict(doc))

    def find(self, query: dict[str, Any], projection: Any = None, sort: Any = None) -> list:
        self.finds.append(query)
        found = [d for d in self.docs if _matches(d, query)]
        return sorted(found, key=lambda d: d.get("n", 0)) if sort else found

    def find_one(self, query: dict[str, Any], projection: Any = None) -> dict[str, Any] | None:
        found = [d for d in self.docs if _matches(d, query)]
        return found[0] if found else None

    def delete_many(self, query: dict[str, Any]) -> _Result:
        before = len(self.docs)
        self.docs = [d for d in self.docs if not _matches(d, query)]
        return _Result(before - len(self.docs))

    def delete_one(self, query: dict[str, Any]) -> _Result:
        for i, doc in enumerate(self.docs):
            if _matches(doc, query):
                del self.docs[i]
                return _Result(1)
        return _Result(0)

    def create_index(self, *args: Any, **kwargs: Any) -> None:
        pass


class FakeDb(dict):
    def __missing__(self, name: str) -> FakeCollection:
        self[name] = FakeCollection()
        return self[name]


def write(store: BlobStore, data: bytes, **kwargs: Any) -> storage_pb2.BlobRef:
    with store.open_upload(
        "videos", "v.mp4", content_type="video/mp4", metadata={"job_id": "j"}, **kwargs
    ) as up:
        up.write(data)
        return up.commit()


def test_bucket_names_and_values():
    assert blobstore.bucket_name(storage_pb2.BUCKET_MP3S) == "mp3s"
    assert blobstore.bucket_name("videos") == "videos"
    assert blobstore.bucket_value("mp3s") == storage_pb2.BUCKET_MP3S
    with pytest.raises(ValueError, match="unknown bucket"):
        blobstore.bucket_name("fs")
    with pytest.raises(ValueError, match="unknown bucket"):
        blobstore.bucket_value(storage_pb2.BUCKET_UNSPECIFIED)


def test_upload_writes_full_chunks_as_they_fill():
    db = FakeDb()
    store = BlobStore(db, chunk_size=10)
    up = store.open_upload("mp3s", "a.mp3", content_type="audio/mpeg", metadata={"job_id": "j"})
    up.write(b"x" * 25)
    assert [c["n"] for c in db["mp3s.chunks"].docs] == [0, 1]  # the 5-byte tail waits
    assert db["mp3s.files"].docs == []  # no files document before commit
    ref = up.commit()
    assert [len(c["data"]) for c in db["mp3s.chunks"].docs] == [10, 10, 5]
    assert ref.size_bytes == 25 and ref.sha256 == hashlib.sha256(b"x" * 25).hexdigest()
    [files_doc] = db["mp3s.files"].docs
    assert files_doc["chunkSize"] == 10 and files_doc["length"] == 25
    assert files_doc["metadata"]["complete"] is True
    assert up.commit() == ref  # idempotent


def test_cap_aborts_and_removes_written_chunks():
    db = FakeDb()
    store = BlobStore(db, chunk_size=10)
    up = store.open_upload("videos", "v", content_type="video/mp4", metadata={}, max_bytes=30)
    up.write(b"a" * 25)
    with pytest.raises(BlobTooLarge) as raised:
        up.write(b"b" * 6)
    assert raised.value.max_bytes == 30
    assert db["videos.chunks"].docs == [] and db["videos.files"].docs == []
    with pytest.raises(ValueError, match="closed"):
        up.write(b"c")


@pytest.mark.parametrize(
    "metadata",
    [{"sha256": "x"}, {"complete": False}, {"content_type": "a"}, {"when": object()}],
)
def test_metadata_is_checked(metadata):
    store = BlobStore(FakeDb())
    with pytest.raises((ValueError, TypeError)):
        store.open_upload("videos", "v", content_type="video/mp4", metadata=metadata)


def test_leaving_the_block_without_commit_discards():
    db = FakeDb()
    store = BlobStore(db, chunk_size=4)
    with store.open_upload("videos", "v", content_type="video/mp4", metadata={}) as up:
        up.write(b"123456789")
    assert up.closed
    assert db["videos.chunks"].docs == []


def test_reader_fetches_aligned_windows_and_caches_two():
    db = FakeDb()
    store = BlobStore(db, chunk_size=10, read_window_bytes=30)  # windows of 3 chunks
    data = os.urandom(95)  # chunks 0..9, the last one 5 bytes
    ref = write(store, data)
    chunks = db["videos.chunks"]
    chunks.finds.clear()
    with store.open_reader(ref) as reader:
        assert reader.read() == data
        assert [q["n"] for q in chunks.finds] == [
            {"$gte": 0, "$lte": 2},
            {"$gte": 3, "$lte": 5},
            {"$gte": 6, "$lte": 8},
            {"$gte": 9, "$lte": 9},
        ]
        reader.seek(-3, io.SEEK_END)
        assert reader.read(10) == data[-3:]
        reader.seek(65)  # window 6..8 is still cached
        assert reader.read(5) == data[65:70]
        assert reader.queries == 4
        reader.seek(0)  # evicted: fetched again
        assert reader.read(1) == data[:1]
        assert reader.queries == 5


def test_iter_range_pieces_respect_chunk_edges_and_piece_size():
    db = FakeDb()
    store = BlobStore(db, chunk_size=10, read_window_bytes=20)
    data = bytes(range(50))
    ref = write(store, data)
    with store.open_reader(ref) as reader:
        pieces = list(reader.iter_range(8, 31, piece=4))
    assert b"".join(pieces) == data[8:32]
    assert [len(p) for p in pieces] == [2, 4, 4, 2, 4, 4, 2, 2]
    with store.open_reader(ref) as reader, pytest.raises(ValueError, match="piece"):
        next(reader.iter_range(0, 1, piece=0))


def test_missing_or_wrong_sized_chunks_are_corrupt():
    db = FakeDb()
    store = BlobStore(db, chunk_size=10)
    ref = write(store, os.urandom(30))
    db["videos.chunks"].docs.pop(1)
    with store.open_reader(ref) as reader, pytest.raises(CorruptBlob, match="chunk 1"):
        reader.read()
    db["videos.chunks"].docs.insert(1, {"files_id": ObjectId(ref.file_id), "n": 1, "data": b"x"})
    with store.open_reader(ref) as reader, pytest.raises(CorruptBlob, match="1 bytes"):
        reader.read()


def test_unknown_incomplete_or_malformed_ids_are_not_found():
    db = FakeDb()
    store = BlobStore(db)
    with pytest.raises(BlobNotFound):
        store.open_reader("videos", str(ObjectId()))
    with pytest.raises(BlobNotFound):
        store.open_reader("videos", "zzz")
    placeholder = ObjectId()  # what nx-27017 creates when the first chunk arrives
    db["videos.files"].insert_one({"_id": placeholder, "length": 0, "metadata": {}})
    with pytest.raises(BlobNotFound):
        store.open_reader("videos", placeholder)
    assert store.stat("videos", placeholder) is None
    with pytest.raises(TypeError):
        store.open_reader("videos")


def test_closed_reader_refuses_io():
    store = BlobStore(FakeDb())
    ref = write(store, b"abc")
    reader = store.open_reader(ref)
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        reader.read(1)
    with pytest.raises(ValueError, match="closed"):
        reader.seek(0)
