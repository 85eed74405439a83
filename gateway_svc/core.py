"""The gateway's business logic, shared by the REST and the gRPC face.

Every operation takes protobuf requests and the caller's `Authorization` value and returns
protobuf responses or raises `ApiError` (a gRPC status). The faces only translate: the REST
shim maps JSON/HTTP onto these calls, the gRPC servicer calls them from its handlers. Calls
are blocking (pymongo, grpc); the REST face runs them in worker threads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import grpc
from google.protobuf.message import Message
from mp3mesh.gateway.v1 import gateway_pb2
from mp3mesh.jobs.v1 import jobs_pb2
from mp3mesh.storage.v1 import storage_pb2
from pymongo.errors import PyMongoError

from gateway_svc import readiness, views
from gateway_svc.auth_client import AuthClient, Identity
from gateway_svc.credentials import basic_credentials, bearer_token
from gateway_svc.downloads import Mp3Download
from gateway_svc.errors import ApiError, invalid, not_found, unavailable
from gateway_svc.outbox import Outbox
from gateway_svc.uploads import UploadGate, UploadSession, check_bitrate, clean_filename
from meshkit.blobstore import BlobNotFound, BlobStore
from meshkit.jobs import InvalidPageToken, JobStore

# Where an upload's bytes and its message go: known down means 503 before reading the body.
UPLOAD_DEPENDENCIES = (readiness.MONGODB, readiness.RABBITMQ)

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
JOB_NOT_FOUND = "job not found"
# The only methods callable without a bearer token.
PUBLIC_METHODS = frozenset({"CreateUser", "Login"})
UnaryHandler = Callable[[Any, "str | None"], Message]


@contextmanager
def database_errors() -> Iterator[None]:
    """MongoDB unreachable (or failing) is UNAVAILABLE: 503, retryable, never a 500."""
    try:
        yield
    except PyMongoError as exc:
        log.warning("the job database failed: %r", exc)
        raise unavailable("the job database is unavailable; try again later") from None


class GatewayCore:
    def __init__(
        self,
        *,
        auth: AuthClient,
        jobs: JobStore,
        blobs: BlobStore,
        outbox: Outbox,
        base_url: str,
        max_upload_bytes: int,
        dependencies_down: Callable[[], list[str]] = list,
    ) -> None:
        self._auth = auth
        self._dependencies_down = dependencies_down
        self._jobs = jobs
        self._blobs = blobs
        self._outbox = outbox
        self._base_url = base_url
        self.max_upload_bytes = max_upload_bytes
        self.gate = UploadGate()

    @property
    def base_url(self) -> str:
        return self._base_url

    # ---- identity ----------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> Identity:
        """Who is calling: auth_svc Verify on the bearer token (401/503/504 otherwise)."""
        return self._auth.verify(bearer_token(authorization))

    def create_user(
        self, request: gateway_pb2.CreateUserRequest, _authorization: str | None = None
    ) -> gateway_pb2.CreateUserResponse:
        reply = self._auth.register(request.email, request.password)
        return gateway_pb2.CreateUserResponse(user_id=reply.user_id, email=reply.email)

    def login(
        self, request: gateway_pb2.LoginRequest, authorization: str | None = None
    ) -> gateway_pb2.LoginResponse:
        """JSON credentials, or HTTP Basic ones when the request carries none (REST and gRPC)."""
        email, password = request.email, request.password
        if not email and not password:
            basic = basic_credentials(authorization)
            if basic is not None:
                email, password = basic
        reply = self._auth.login(email, password)
        response = gateway_pb2.LoginResponse(
            access_token=reply.access_token, token_type=reply.token_type
        )
        if reply.HasField("expires_at"):
            response.expires_at.CopyFrom(reply.expires_at)
        return response

    # ---- jobs --------------------------------------------------------------------------

    def _owned_job(self, job_id: str, identity: Identity) -> jobs_pb2.Job:
        if not job_id:
            raise invalid("job_id is required")
        with database_errors():
            job = self._jobs.get_for_owner(job_id, identity.user_id)
        if job is None:
            raise not_found(JOB_NOT_FOUND)
        return job

    def get_job(
        self, request: gateway_pb2.GetJobRequest, authorization: str | None
    ) -> gateway_pb2.GetJobResponse:
        identity = self.authenticate(authorization)
        job = self._owned_job(request.job_id, identity)
        return gateway_pb2.GetJobResponse(job=views.public_job(job, self._base_url))

    def list_jobs(
        self, request: gateway_pb2.ListJobsRequest, authorization: str | None
    ) -> gateway_pb2.ListJobsResponse:
        identity = self.authenticate(authorization)
        size = request.page_size or DEFAULT_PAGE_SIZE
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise invalid(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        try:
            with database_errors():
                jobs, token = self._jobs.list_for_owner(
                    identity.user_id, page_size=size, page_token=request.page_token
                )
        except InvalidPageToken:
            raise invalid(
                "invalid page_token: pass the next_page_token of a previous page"
            ) from None
        return gateway_pb2.ListJobsResponse(
            jobs=[views.public_job(job, self._base_url) for job in jobs], next_page_token=token
        )

    def delete_job(
        self, request: gateway_pb2.DeleteJobRequest, authorization: str | None
    ) -> gateway_pb2.DeleteJobResponse:
        """Removes the video, the MP3 (and any attempt's leftovers), then the job.

        Blobs go first: if MongoDB fails half-way the job is still there and a retried DELETE
        finishes the work; the other order could strand blobs nobody can name any more.
        """
        identity = self.authenticate(authorization)
        job = self._owned_job(request.job_id, identity)
        with database_errors():
            for bucket, ref_field in (
                (storage_pb2.BUCKET_VIDEOS, "video"),
                (storage_pb2.BUCKET_MP3S, "mp3"),
            ):
                file_ids = set(self._blobs.find_by_job(bucket, job.job_id))
                if job.HasField(ref_field):
                    file_ids.add(getattr(job, ref_field).file_id)
                for file_id in sorted(file_ids):
                    self._blobs.delete(bucket, file_id)
            self._jobs.delete_for_owner(job.job_id, identity.user_id)
        log.info("job deleted", extra={"job_id": job.job_id})
        return gateway_pb2.DeleteJobResponse()

    def unary_handlers(self) -> Mapping[str, UnaryHandler]:
        """GatewayService's unary methods by name, for the REST shim and the gRPC servicer."""
        return {
            "CreateUser": self.create_user,
            "Login": self.login,
            "GetJob": self.get_job,
            "ListJobs": self.list_jobs,
            "DeleteJob": self.delete_job,
        }

    # ---- upload and download -------------------------------------------------------------

    def begin_upload(
        self, identity: Identity, filename: str | None, bitrate_kbps: int
    ) -> UploadSession:
        """A session to stream one video into (see uploads.UploadSession).

        503 before a byte is read when draining, or when the last readiness check found the
        database or the broker down: nothing is half-written for a client to retry.
        """
        name = clean_filename(filename)
        bitrate = check_bitrate(bitrate_kbps)
        down = [dep for dep in self._dependencies_down() if dep in UPLOAD_DEPENDENCIES]
        if down:
            raise unavailable(
                f"cannot take uploads right now: {', '.join(down)} unavailable; try again later"
            )
        self.gate.enter()
        session = UploadSession(
            identity=identity,
            filename=name,
            bitrate_kbps=bitrate,
            blobs=self._blobs,
            jobs=self._jobs,
            outbox=self._outbox,
            max_bytes=self.max_upload_bytes,
            base_url=self._base_url,
            on_close=self.gate.leave,
        )
        log.info("upload started", extra={"job_id": session.job_id, "video_filename": name})
        return session

    def open_download(self, identity: Identity, job_id: str) -> Mp3Download:
        """The caller's finished MP3, ready to stream.

        404 for unknown jobs and other users' jobs alike; FAILED_PRECONDITION (REST: 409, the
        resource exists but is not ready) while the job is not DONE.
        """
        job = self._owned_job(job_id, identity)
        if job.state != jobs_pb2.JOB_STATE_DONE or not job.HasField("mp3"):
            state = jobs_pb2.JobState.Name(job.state)
            reason = f"the MP3 is not ready: the job is {state}"
            if job.state == jobs_pb2.JOB_STATE_FAILED:
                reason = f"the job failed, there is no MP3: {job.failure.message}"
            raise ApiError(grpc.StatusCode.FAILED_PRECONDITION, reason, http_status=409)
        try:
            with database_errors():
                reader = self._blobs.open_reader(job.mp3)
        except BlobNotFound:
            raise not_found("the MP3 of this job is gone") from None
        return Mp3Download(job=job, reader=reader)
