"""The gRPC face: GatewayService over the same core as the REST routes.

Credentials come from the `authorization` metadata (`Bearer <token>`, or Basic for Login),
exactly as REST reads the header, so grpcurl reaches what curl reaches. Errors are the core's
gRPC status codes as they are (no HTTP overrides on this face).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

import grpc
from mp3mesh.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from pymongo.errors import PyMongoError

from gateway_svc.core import GatewayCore
from gateway_svc.errors import ApiError, invalid
from gateway_svc.uploads import UploadSession
from meshkit.blobstore import BlobError

log = logging.getLogger(__name__)

T = TypeVar("T")
DOWNLOAD_PIECE_BYTES = 256 * 1024


def authorization_of(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key.lower() == "authorization":
            return value if isinstance(value, str) else bytes(value).decode("latin-1")
    return None


def _abort(context: grpc.ServicerContext, error: ApiError) -> NoReturn:
    context.abort(error.code, error.message)
    raise AssertionError("unreachable: context.abort raises")


def _unexpected(context: grpc.ServicerContext, exc: Exception) -> NoReturn:
    if not context.is_active():  # the client cancelled (e.g. mid-upload): not our error
        log.info("gRPC call ended by the client: %r", exc)
        context.abort(grpc.StatusCode.CANCELLED, "the call was cancelled")
    else:
        log.exception("unhandled error in the gRPC face")
        context.abort(grpc.StatusCode.INTERNAL, "internal error; the trace id is in the logs")
    raise AssertionError("unreachable: context.abort raises")


def _call(context: grpc.ServicerContext, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ApiError as exc:
        _abort(context, exc)
    except Exception as exc:
        _unexpected(context, exc)


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    def __init__(self, core: GatewayCore) -> None:
        self._core = core
        self._handlers = core.unary_handlers()

    def _unary(self, name: str, request: Any, context: grpc.ServicerContext) -> Any:
        handler = self._handlers[name]
        return _call(context, lambda: handler(request, authorization_of(context)))

    def CreateUser(
        self, request: gateway_pb2.CreateUserRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.CreateUserResponse:
        return self._unary("CreateUser", request, context)  # type: ignore[no-any-return]

    def Login(
        self, request: gateway_pb2.LoginRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.LoginResponse:
        return self._unary("Login", request, context)  # type: ignore[no-any-return]

    def GetJob(
        self, request: gateway_pb2.GetJobRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.GetJobResponse:
        return self._unary("GetJob", request, context)  # type: ignore[no-any-return]

    def ListJobs(
        self, request: gateway_pb2.ListJobsRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.ListJobsResponse:
        return self._unary("ListJobs", request, context)  # type: ignore[no-any-return]

    def DeleteJob(
        self, request: gateway_pb2.DeleteJobRequest, context: grpc.ServicerContext
    ) -> gateway_pb2.DeleteJobResponse:
        return self._unary("DeleteJob", request, context)  # type: ignore[no-any-return]

    def UploadVideo(
        self,
        request_iterator: Iterator[gateway_pb2.UploadVideoRequest],
        context: grpc.ServicerContext,
    ) -> gateway_pb2.UploadVideoResponse:
        """Metadata first, then chunks (keep them ≤ 1 MiB; gRPC's default limit is 4 MiB)."""
        session: UploadSession | None = None

        def run() -> gateway_pb2.UploadVideoResponse:
            nonlocal session
            identity = self._core.authenticate(authorization_of(context))
            first = next(request_iterator, None)
            if first is None or first.WhichOneof("part") != "metadata":
                raise invalid("the first message of an upload must carry the metadata")
            session = self._core.begin_upload(
                identity, first.metadata.filename, first.metadata.bitrate_kbps
            )
            for message in request_iterator:
                if message.WhichOneof("part") != "chunk":
                    raise invalid("metadata may only come first; the rest must be chunks")
                session.write(message.chunk)
            return session.finish()

        try:
            return _call(context, run)
        finally:
            if session is not None:
                session.abort()  # no-op once finished; cleans up a cancelled stream

    def DownloadMp3(
        self, request: gateway_pb2.DownloadMp3Request, context: grpc.ServicerContext
    ) -> Iterator[gateway_pb2.DownloadMp3Response]:
        """Metadata first, then the bytes from `offset`, at most `limit` of them."""

        def open_() -> Any:
            if request.offset < 0 or request.limit < 0:
                raise invalid("offset and limit must not be negative")
            identity = self._core.authenticate(authorization_of(context))
            download = self._core.open_download(identity, request.job_id)
            if request.offset > download.size or (
                request.offset == download.size and download.size > 0
            ):
                download.close()
                raise ApiError(
                    grpc.StatusCode.OUT_OF_RANGE,
                    f"offset {request.offset} is past the end of the {download.size}-byte MP3",
                )
            return download

        download = _call(context, open_)
        yield gateway_pb2.DownloadMp3Response(
            metadata=gateway_pb2.Mp3Metadata(
                filename=download.filename,
                content_type="audio/mpeg",
                size_bytes=download.size,
                duration_s=download.job.mp3_duration_s,
            )
        )
        end = download.size - 1
        if request.limit:
            end = min(end, request.offset + request.limit - 1)
        try:
            for piece in download.pieces(request.offset, end):
                yield gateway_pb2.DownloadMp3Response(chunk=piece)
        except (PyMongoError, BlobError) as exc:
            log.warning("download of %s failed mid-stream: %r", request.job_id, exc)
            context.abort(grpc.StatusCode.UNAVAILABLE, "the MP3 store failed mid-download")
        finally:
            download.close()
