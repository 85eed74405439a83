"""The hand-written streaming routes: video upload and MP3 download (as grpc-gateway users
write them for files).

Upload: the body (raw, or the multipart field `file`, parsed as it streams) is batched into
~1 MiB pieces, each written to GridFS from a worker thread while the next piece is received,
so the event loop never blocks on pymongo and at most two batches are in memory. Nothing is
ever spooled to disk.

Download: `Range` is honoured (see ranges.py); the body is read from GridFS chunk range by
chunk range in a worker thread by Starlette's StreamingResponse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc
from mp3mesh.gateway.v1 import gateway_pb2
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from gateway_svc.auth_client import Identity
from gateway_svc.core import GatewayCore
from gateway_svc.downloads import MP3_CONTENT_TYPE
from gateway_svc.errors import ApiError, invalid
from gateway_svc.multipart_stream import MultipartFileStream, boundary_of
from gateway_svc.ranges import RangeNotSatisfiable, content_disposition, parse_range
from gateway_svc.uploads import UploadSession, check_bitrate, too_large

log = logging.getLogger(__name__)

BATCH_BYTES = 1024 * 1024
# Multipart framing around the file (boundaries, part headers, small text fields).
MULTIPART_SLACK_BYTES = 64 * 1024
MULTIPART_DEFAULT_FILENAME = "video"
RAW_CONTENT_TYPES = frozenset(
    {
        "",
        "application/octet-stream",
        "application/ogg",
        "application/mp4",
        "application/x-matroska",
        "application/vnd.rn-realmedia",
        # What `curl --data-binary @video.mp4` sends unless told otherwise: the body is
        # still the raw file, and the sniffer decides whether it is media.
        "application/x-www-form-urlencoded",
    }
)


def unsupported_content_type(content_type: str) -> ApiError:
    return ApiError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"Content-Type {content_type!r} is not supported: send multipart/form-data with a"
        " 'file' field, or the raw video as application/octet-stream or its media type",
        http_status=415,
    )


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_raw_video_type(media_type: str) -> bool:
    return (
        media_type in RAW_CONTENT_TYPES
        or media_type.startswith("video/")
        or media_type.startswith("audio/")
    )


def int_query(request: Request, name: str) -> int:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return 0
    try:
        return int(raw, 10)
    except ValueError:
        raise invalid(f"{name}={raw!r} is not an integer") from None


class BatchedWriter:
    """Collects pieces into ~1 MiB batches; one batch is written in a thread at a time."""

    def __init__(self, session: UploadSession) -> None:
        self._session = session
        self._buffer = bytearray()
        self._pending: asyncio.Future[None] | None = None

    async def add(self, piece: bytes) -> None:
        self._buffer += piece
        if len(self._buffer) >= BATCH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending
        if self._buffer:
            batch = bytes(self._buffer)
            self._buffer.clear()
            self._pending = asyncio.ensure_future(run_in_threadpool(self._session.write, batch))

    async def finish(self) -> gateway_pb2.UploadVideoResponse:
        await self._flush()
        await self._flush()  # waits for the last batch
        return await run_in_threadpool(self._session.finish)

    async def abort(self) -> None:
        """Removes what was written; completes even if the request task is being cancelled
        (shielded), so the partial video is gone and the upload gate is left either way."""
        pending, self._pending = self._pending, None
        self._buffer.clear()

        async def cleanup() -> None:
            if pending is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await pending
            await run_in_threadpool(self._session.abort)

        await asyncio.shield(asyncio.ensure_future(cleanup()))


async def _pieces(request: Request) -> AsyncIterator[bytes]:
    try:
        async for piece in request.stream():
            if piece:
                yield piece
    except ClientDisconnect:
        raise ApiError(grpc.StatusCode.CANCELLED, "the client went away mid-upload") from None


async def upload_video(core: GatewayCore, request: Request) -> gateway_pb2.UploadVideoResponse:
    """Checks everything that can be checked before reading, then streams the body in."""
    identity = await run_in_threadpool(core.authenticate, request.headers.get("authorization"))
    bitrate = check_bitrate(int_query(request, "bitrate_kbps"))
    content_type = request.headers.get("content-type", "")
    media_type = _media_type(content_type)
    multipart = media_type == "multipart/form-data"
    if not multipart and not is_raw_video_type(media_type):
        raise unsupported_content_type(content_type)
    limit = core.max_upload_bytes + (MULTIPART_SLACK_BYTES if multipart else 0)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(core.max_upload_bytes)
    if multipart:
        return await _upload_multipart(core, request, identity, bitrate, content_type)
    session = core.begin_upload(identity, request.query_params.get("filename"), bitrate)
    writer = BatchedWriter(session)
    try:
        async for piece in _pieces(request):
            await writer.add(piece)
        return await writer.finish()
    except BaseException:
        await writer.abort()
        raise


async def _upload_multipart(
    core: GatewayCore, request: Request, identity: Identity, bitrate: int, content_type: str
) -> gateway_pb2.UploadVideoResponse:
    parser = MultipartFileStream(boundary_of(content_type))
    writer: BatchedWriter | None = None
    try:
        async for piece in _pieces(request):
            for data in parser.feed(piece):
                if writer is None:
                    filename = (
                        parser.filename
                        or request.query_params.get("filename")
                        or MULTIPART_DEFAULT_FILENAME
                    )
                    writer = BatchedWriter(core.begin_upload(identity, filename, bitrate))
                await writer.add(data)
        parser.finish()
        if writer is None:
            raise invalid("the file is empty")
        return await writer.finish()
    except BaseException:
        if writer is not None:
            await writer.abort()
        raise


async def download_mp3(core: GatewayCore, request: Request, job_id: str) -> Response:
    """The MP3 with Range support; HEAD gives the same headers without the body."""
    identity = await run_in_threadpool(core.authenticate, request.headers.get("authorization"))
    download = await run_in_threadpool(core.open_download, identity, job_id)
    size = download.size
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": download.etag,
        "Content-Disposition": content_disposition(download.filename),
        "Cache-Control": "private, no-cache",
    }
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != download.etag:
        range_header = None  # the client's copy is stale: send the whole file
    try:
        byte_range = parse_range(range_header, size)
    except RangeNotSatisfiable as exc:
        download.close()
        raise ApiError(
            grpc.StatusCode.OUT_OF_RANGE,
            str(exc),
            http_status=416,
            headers={"Content-Range": f"bytes */{size}", **headers},
        ) from None
    if byte_range is None:
        status, start, end = 200, 0, size - 1
    else:
        status, start, end = 206, byte_range.start, byte_range.end
        headers["Content-Range"] = byte_range.content_range(size)
    headers["Content-Length"] = str(end - start + 1 if size else 0)
    if request.method == "HEAD":
        download.close()
        return Response(status_code=status, headers=headers, media_type=MP3_CONTENT_TYPE)
    return StreamingResponse(
        download.pieces(start, end),
        status_code=status,
        headers=headers,
        media_type=MP3_CONTENT_TYPE,
    )
