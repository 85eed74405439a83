"""GridFS blob storage: streaming writes and seekable, bounded-memory reads.

Why not pymongo's GridIn/GridOut:

* `GridIn` (what `GridFSBucket.open_upload_stream` returns) buffers chunk documents client-side
  until 48 MB have accumulated before its first `insert_many` (pymongo 4.20,
  `_UPLOAD_BUFFER_SIZE`): a 100 MB upload measured 172-180 MB peak RSS. The writer here inserts
  each chunk as it fills — 36-39 MB RSS and faster on nx-27017 — and writes the same GridFS
  layout (`<bucket>.files` + `<bucket>.chunks`, spec field names), so any GridFS tool reads it.
* `GridOut` on the embedded nx-27017 server asks for every chunk in one query and nx answers in
  one reply, which pymongo refuses above ~45 MB. `BlobReader` asks for bounded chunk ranges
  (`{files_id, n: {$gte, $lte}}`, a few MiB each), which both nx-27017 and MongoDB answer.

Metadata written on every file: the caller's (owner_id, job_id, ...) plus `content_type`,
`sha256` and `complete: True`. `complete` exists because nx-27017 creates a placeholder files
document (length 0, empty metadata) as soon as the first chunk arrives, so "a files document
exists" does not mean "the upload finished" there; only `complete: True` does, on both servers.
Metadata values are restricted to JSON scalars because nx-27017 stores GridFS metadata as JSON.

A crashed upload leaves chunks (and, on nx, a placeholder) under the id it was writing; the
caller records that id before writing (e.g. `JobStore.start_conversion`) and removes the debris
later with `delete_orphan_chunks`.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import logging
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, TypeAlias

from bson import Int64, ObjectId
from bson.errors import InvalidId
from mp3mesh.storage.v1 import storage_pb2
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import OperationFailure

log = logging.getLogger(__name__)

BucketValue: TypeAlias = storage_pb2.Bucket
BucketLike: TypeAlias = "BucketValue | str"
FileIdLike: TypeAlias = "ObjectId | str"

BUCKET_NAMES: Mapping[BucketValue, str] = MappingProxyType(
    {storage_pb2.BUCKET_VIDEOS: "videos", storage_pb2.BUCKET_MP3S: "mp3s"}
)

# 1 MiB chunks: on an idle machine nx-27017 took a 100 MB upload (one insert per chunk) at
# 54 MB/s against 45 MB/s with GridFS's 255 KiB default; under load the two were within noise
# (26-34 MB/s). Fewer, larger documents also mean fewer round trips on MongoDB (limit 16 MiB).
DEFAULT_CHUNK_SIZE = 1024 * 1024
# Upper bound of one chunk-range query's reply: far below nx-27017's ~45 MB single-reply limit
# and small enough that a reader's cache stays a few MiB.
DEFAULT_READ_WINDOW_BYTES = 4 * 1024 * 1024
DEFAULT_RANGE_PIECE = 256 * 1024

_JSON_SCALARS = (str, int, float, bool)
_RESERVED_METADATA = frozenset({"content_type", "sha256", "complete"})


class BlobError(Exception):
    """Base class of blob storage errors."""


class BlobTooLarge(BlobError):
    """The upload went over its size cap; what was written has been removed."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"blob exceeds the limit of {max_bytes} bytes")
        self.max_bytes = max_bytes


class BlobNotFound(BlobError):
    """No committed blob with that id in that bucket."""


class CorruptBlob(BlobError):
    """Chunks are missing or have the wrong size for the file's declared length."""


def bucket_value(bucket: BucketLike) -> BucketValue:
    """The `Bucket` enum value for an enum value or a bucket name ("videos"/"mp3s")."""
    if isinstance(bucket, str):
        for value, name in BUCKET_NAMES.items():
            if name == bucket:
                return value
        raise ValueError(f"unknown bucket {bucket!r}")
    if bucket not in BUCKET_NAMES:
        raise ValueError(f"unknown bucket {bucket!r}")
    return bucket


def bucket_name(bucket: BucketLike) -> str:
    """The GridFS bucket name ("videos"/"mp3s") for an enum value or a name."""
    return BUCKET_NAMES[bucket_value(bucket)]


def as_object_id(file_id: FileIdLike) -> ObjectId:
    """An ObjectId from a hex string; a malformed id is a `BlobNotFound` (it cannot exist)."""
    if isinstance(file_id, ObjectId):
        return file_id
    try:
        return ObjectId(file_id)
    except (InvalidId, TypeError) as exc:
        raise BlobNotFound(f"invalid file id {file_id!r}") from exc


def new_file_id() -> str:
    """A fresh file id (hex), for callers that record the id before writing."""
    return str(ObjectId())


def _ref_from_files_doc(bucket: BucketValue, doc: Mapping[str, Any]) -> storage_pb2.BlobRef:
    metadata = doc.get("metadata") or {}
    return storage_pb2.BlobRef(
        bucket=bucket,
        file_id=str(doc["_id"]),
        filename=str(doc.get("filename") or ""),
        content_type=str(
            metadata.get("content_type") or doc.get("contentType") or "application/octet-stream"
        ),
        size_bytes=int(doc.get("length") or 0),
        sha256=str(metadata.get("sha256") or ""),
    )


def _delete_files_doc(files: Collection[dict[str, Any]], oid: ObjectId) -> bool:
    """Deletes a files document if present; True when one was removed.

    nx-27017 answers a delete of a missing files document with an error instead of n=0, so
    look first and treat a failure on an already-gone document as success.
    """
    if files.find_one({"_id": oid}) is None:
        return False
    try:
        return files.delete_one({"_id": oid}).deleted_count > 0
    except OperationFailure:
        if files.find_one({"_id": oid}) is None:
            return False
        raise


class BlobUpload:
    """A streaming GridFS writer: hashes and counts as it goes, one chunk in memory at most.

    Use as a context manager; leaving the block without `commit()` (by exception or not)
    removes everything written. After `commit()` the blob is durable and only `BlobStore.delete`
    removes it.
    """

    def __init__(
        self,
        *,
        files: Collection[dict[str, Any]],
        chunks: Collection[dict[str, Any]],
        bucket: BucketValue,
        file_id: ObjectId,
        filename: str,
        content_type: str,
        metadata: Mapping[str, str | int | float | bool],
        max_bytes: int | None,
        chunk_size: int,
    ) -> None:
        self._files = files
        self._chunks = chunks
        self._bucket = bucket
        self._oid = file_id
        self._filename = filename
        self._content_type = content_type
        self._metadata = dict(metadata)
        self._max_bytes = max_bytes
        self._chunk_size = chunk_size
        self._buffer = bytearray()
        self._sha = hashlib.sha256()
        self._size = 0
        self._next_n = 0
        self._ref: storage_pb2.BlobRef | None = None
        self._closed = False

    @property
    def file_id(self) -> str:
        """The hex id the blob is being written under (known before the first byte)."""
        return str(self._oid)

    @property
    def size(self) -> int:
        """Bytes accepted so far."""
        return self._size

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Appends bytes; full chunks go to the database immediately.

        Raises `BlobTooLarge` (after removing what was written) when the cap is exceeded.
        """
        if self._closed:
            raise ValueError("write to a closed BlobUpload")
        view = memoryview(data).cast("B")
        if self._max_bytes is not None and self._size + len(view) > self._max_bytes:
            self.abort()
            raise BlobTooLarge(self._max_bytes)
        self._sha.update(view)
        self._size += len(view)
        self._buffer += view
        while len(self._buffer) >= self._chunk_size:
            self._insert_chunk(bytes(self._buffer[: self._chunk_size]))
            del self._buffer[: self._chunk_size]
        return len(view)

    def _insert_chunk(self, data: bytes) -> None:
        self._chunks.insert_one({"files_id": self._oid, "n": self._next_n, "data": data})
        self._next_n += 1

    def commit(self) -> storage_pb2.BlobRef:
        """Writes the last chunk and the files document; the blob is then complete."""
        if self._ref is not None:
            return self._ref
        if self._closed:
            raise ValueError("commit of an aborted BlobUpload")
        try:
            if self._buffer:
                self._insert_chunk(bytes(self._buffer))
                self._buffer.clear()
            sha256 = self._sha.hexdigest()
            metadata = {
                **self._metadata,
                "content_type": self._content_type,
                "sha256": sha256,
                "complete": True,
            }
            self._files.insert_one(
                {
                    "_id": self._oid,
                    "length": Int64(self._size),
                    "chunkSize": self._chunk_size,
                    "uploadDate": datetime.datetime.now(datetime.UTC),
                    "filename": self._filename,
                    "metadata": metadata,
                }
            )
        except BaseException:
            self._best_effort_abort()
            raise
        self._closed = True
        self._ref = storage_pb2.BlobRef(
            bucket=self._bucket,
            file_id=str(self._oid),
            filename=self._filename,
            content_type=self._content_type,
            size_bytes=self._size,
            sha256=sha256,
        )
        return self._ref

    def abort(self) -> None:
        """Removes every chunk written (and nx-27017's placeholder). No-op after commit."""
        if self._ref is not None or self._closed:
            return
        self._closed = True
        self._buffer.clear()
        self._chunks.delete_many({"files_id": self._oid})
        _delete_files_doc(self._files, self._oid)

    def _best_effort_abort(self) -> None:
        try:
            self.abort()
        except Exception:
            log.warning("could not remove partial blob %s", self._oid, exc_info=True)

    def __enter__(self) -> BlobUpload:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ref is None:
            if exc is None:
                self.abort()
            else:
                self._best_effort_abort()


class BlobReader(io.RawIOBase):
    """A seekable, read-only file over one committed GridFS blob.

    Chunks are fetched by range queries of at most `window_chunks` chunks, aligned to window
    boundaries, and the last `cache_windows` windows are kept — enough for PyAV jumping between
    an MP4's trailing `moov` and its `mdat`, and for sequential reads to cost one query per
    window. Memory is bounded by window size x cache_windows whatever the blob's length.
    """

    def __init__(
        self,
        *,
        chunks: Collection[dict[str, Any]],
        ref: storage_pb2.BlobRef,
        chunk_size: int,
        window_chunks: int,
        cache_windows: int,
    ) -> None:
        super().__init__()
        self._chunks = chunks
        self._ref = ref
        self._oid = ObjectId(ref.file_id)
        self._length = ref.size_bytes
        self._chunk_size = chunk_size
        self._window_chunks = max(1, window_chunks)
        self._cache_windows = max(1, cache_windows)
        self._cache: OrderedDict[int, list[bytes]] = OrderedDict()
        self._pos = 0
        self._queries = 0

    @property
    def ref(self) -> storage_pb2.BlobRef:
        return self._ref

    @property
    def length(self) -> int:
        return self._length

    @property
    def name(self) -> str:
        return self._ref.filename

    @property
    def queries(self) -> int:
        """How many chunk-range queries this reader has sent (for tests and metrics)."""
        return self._queries

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self._length + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        self._pos = target
        return self._pos

    def readinto(self, buffer: Any) -> int:
        """Fills `buffer` from the current position; short only at end of blob."""
        self._check_open()
        out = memoryview(buffer).cast("B")
        written = 0
        while written < len(out) and self._pos < self._length:
            index, offset = divmod(self._pos, self._chunk_size)
            data = self._chunk(index)
            take = min(len(out) - written, len(data) - offset)
            out[written : written + take] = data[offset : offset + take]
            written += take
            self._pos += take
        return written

    def readall(self) -> bytes:
        """The rest of the blob in one buffer (RawIOBase's default reads 8 KiB at a time)."""
        self._check_open()
        buffer = bytearray(max(0, self._length - self._pos))
        view = memoryview(buffer)
        filled = 0
        while filled < len(buffer):
            got = self.readinto(view[filled:])
            if got == 0:
                break
            filled += got
        return bytes(buffer[:filled])

    def iter_range(
        self, start: int, end_inclusive: int, *, piece: int = DEFAULT_RANGE_PIECE
    ) -> Iterator[bytes]:
        """Yields bytes `start..end_inclusive` in pieces of at most `piece` (HTTP Range).

        Independent of the file position. Raises ValueError for a range outside the blob, so
        the caller answers 416 before sending headers.
        """
        if piece <= 0:
            raise ValueError("piece must be positive")
        if not 0 <= start <= end_inclusive < self._length:
            raise ValueError(f"range {start}-{end_inclusive} outside a {self._length}-byte blob")
        pos = start
        while pos <= end_inclusive:
            self._check_open()
            index, offset = divmod(pos, self._chunk_size)
            data = self._chunk(index)
            take = min(piece, len(data) - offset, end_inclusive + 1 - pos)
            yield data[offset : offset + take]
            pos += take

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed BlobReader")

    def _expected_size(self, index: int) -> int:
        return min(self._chunk_size, self._length - index * self._chunk_size)

    def _chunk(self, index: int) -> bytes:
        first = index - index % self._window_chunks
        window = self._cache.get(first)
        if window is None:
            window = self._fetch(first)
            self._cache[first] = window
            while len(self._cache) > self._cache_windows:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(first)
        return window[index - first]

    def _fetch(self, first: int) -> list[bytes]:
        last_chunk = (self._length - 1) // self._chunk_size
        last = min(first + self._window_chunks - 1, last_chunk)
        self._queries += 1
        docs = self._chunks.find(
            {"files_id": self._oid, "n": {"$gte": first, "$lte": last}},
            projection={"n": 1, "data": 1},
            sort=[("n", 1)],
        )
        window: list[bytes] = []
        for doc in docs:
            expected_n = first + len(window)
            if doc["n"] != expected_n:
                raise CorruptBlob(f"{self._oid}: chunk {expected_n} missing (got {doc['n']})")
            data = bytes(doc["data"])
            if len(data) != self._expected_size(expected_n):
                raise CorruptBlob(f"{self._oid}: chunk {expected_n} has {len(data)} bytes")
            window.append(data)
        if len(window) != last - first + 1:
            raise CorruptBlob(f"{self._oid}: chunks {first}-{last} incomplete")
        return window

    def close(self) -> None:
        self._cache.clear()
        super().close()


class BlobStore:
    """The `videos` and `mp3s` GridFS buckets of one database."""

    def __init__(
        self,
        db: Database[dict[str, Any]],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        read_window_bytes: int = DEFAULT_READ_WINDOW_BYTES,
        cache_windows: int = 2,
    ) -> None:
        if chunk_size <= 0 or read_window_bytes <= 0:
            raise ValueError("chunk_size and read_window_bytes must be positive")
        self._db = db
        self._chunk_size = chunk_size
        self._read_window_bytes = read_window_bytes
        self._cache_windows = cache_windows

    def _files(self, bucket: BucketLike) -> Collection[dict[str, Any]]:
        return self._db[f"{bucket_name(bucket)}.files"]

    def _chunks(self, bucket: BucketLike) -> Collection[dict[str, Any]]:
        return self._db[f"{bucket_name(bucket)}.chunks"]

    def ensure_indexes(self) -> None:
        """The GridFS spec indexes plus one for `find_by_job`; idempotent.

        nx-27017 keeps GridFS in its own tables and accepts these as no-ops.
        """
        for bucket in BUCKET_NAMES:
            self._chunks(bucket).create_index(
                [("files_id", 1), ("n", 1)], unique=True, name="files_id_1_n_1"
            )
            files = self._files(bucket)
            files.create_index([("filename", 1), ("uploadDate", 1)], name="filename_1_uploadDate_1")
            files.create_index([("metadata.job_id", 1)], name="metadata_job_id_1")

    def open_upload(
        self,
        bucket: BucketLike,
        filename: str,
        *,
        content_type: str,
        metadata: Mapping[str, str | int | float | bool],
        max_bytes: int | None = None,
        file_id: FileIdLike | None = None,
    ) -> BlobUpload:
        """A writer for a new blob; pass `file_id` when it must be recorded beforehand.

        `metadata` should carry `owner_id` and `job_id`; `content_type`, `sha256` and `complete`
        are added by the store.
        """
        for key, value in metadata.items():
            if key in _RESERVED_METADATA:
                raise ValueError(f"metadata key {key!r} is set by the blob store")
            if not isinstance(value, _JSON_SCALARS):
                raise TypeError(f"metadata {key!r} must be str/int/float/bool, not {type(value)}")
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        return BlobUpload(
            files=self._files(bucket),
            chunks=self._chunks(bucket),
            bucket=bucket_value(bucket),
            file_id=as_object_id(file_id) if file_id is not None else ObjectId(),
            filename=filename,
            content_type=content_type,
            metadata=metadata,
            max_bytes=max_bytes,
            chunk_size=self._chunk_size,
        )

    def stat(self, bucket: BucketLike, file_id: FileIdLike) -> storage_pb2.BlobRef | None:
        """The committed blob's reference, or None (missing or still being written)."""
        try:
            oid = as_object_id(file_id)
        except BlobNotFound:
            return None
        doc = self._files(bucket).find_one({"_id": oid})
        if doc is None or (doc.get("metadata") or {}).get("complete") is not True:
            return None
        return _ref_from_files_doc(bucket_value(bucket), doc)

    def open_reader(
        self, ref_or_bucket: storage_pb2.BlobRef | BucketLike, file_id: FileIdLike | None = None
    ) -> BlobReader:
        """A seekable reader: `open_reader(ref)` or `open_reader(bucket, file_id)`.

        The size and sha256 come from the stored files document, not from the given ref.
        Raises `BlobNotFound` for a missing or unfinished blob.
        """
        if isinstance(ref_or_bucket, storage_pb2.BlobRef):
            bucket: BucketLike = ref_or_bucket.bucket
            fid: FileIdLike = ref_or_bucket.file_id
        else:
            if file_id is None:
                raise TypeError("open_reader(bucket, file_id) needs a file id")
            bucket, fid = ref_or_bucket, file_id
        oid = as_object_id(fid)
        doc = self._files(bucket).find_one({"_id": oid})
        if doc is None or (doc.get("metadata") or {}).get("complete") is not True:
            raise BlobNotFound(f"no blob {oid} in {bucket_name(bucket)}")
        chunk_size = int(doc.get("chunkSize") or self._chunk_size)
        return BlobReader(
            chunks=self._chunks(bucket),
            ref=_ref_from_files_doc(bucket_value(bucket), doc),
            chunk_size=chunk_size,
            window_chunks=self._read_window_bytes // chunk_size,
            cache_windows=self._cache_windows,
        )

    def delete(self, bucket: BucketLike, file_id: FileIdLike) -> bool:
        """Removes a blob (chunks first, then the files document); True if it existed.

        Tolerates an already-deleted blob. Chunks go first because nx-27017 finds chunks
        through the files document: deleting that first would strand the chunks.
        """
        try:
            oid = as_object_id(file_id)
        except BlobNotFound:
            return False
        self._chunks(bucket).delete_many({"files_id": oid})
        return _delete_files_doc(self._files(bucket), oid)

    def delete_orphan_chunks(self, bucket: BucketLike, file_id: FileIdLike) -> int:
        """Cleans up an upload that never committed; returns the number of chunks removed.

        Never touches a committed blob (returns 0): a crashed attempt that got as far as
        committing left a usable file, which `find_by_job` finds.
        """
        try:
            oid = as_object_id(file_id)
        except BlobNotFound:
            return 0
        files = self._files(bucket)
        doc = files.find_one({"_id": oid})
        if doc is not None and (doc.get("metadata") or {}).get("complete") is True:
            log.info("not removing %s/%s: it is a committed blob", bucket_name(bucket), oid)
            return 0
        removed = self._chunks(bucket).delete_many({"files_id": oid}).deleted_count
        if doc is not None:
            _delete_files_doc(files, oid)
        return removed

    def find_by_job(self, bucket: BucketLike, job_id: str) -> list[str]:
        """Ids (hex, oldest first) of the committed blobs whose metadata names this job."""
        docs = self._files(bucket).find({"metadata.job_id": job_id, "metadata.complete": True})
        return [str(oid) for oid in sorted(ObjectId(doc["_id"]) for doc in docs)]
