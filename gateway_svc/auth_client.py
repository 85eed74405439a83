"""auth_svc over gRPC, with deadlines, its failures turned into the gateway's errors.

Every call has a deadline, so a slow auth_svc costs a request at most `timeout_s` and answers
DEADLINE_EXCEEDED (504), and an unreachable one answers UNAVAILABLE (503) — never a hang and
never a 500. The answers auth_svc gives on purpose (bad token, wrong password, taken email,
weak password, too many attempts) pass through with their code and message.

Register and Login hash passwords with argon2id on the other side, which takes far longer than
checking a token, so they get `HASHING_DEADLINE_FACTOR` times the deadline of Verify.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from mp3mesh.auth.v1 import auth_pb2, auth_pb2_grpc

from gateway_svc.errors import ApiError
from observability.grpc import traced_channel

log = logging.getLogger(__name__)

HASHING_DEADLINE_FACTOR = 5
AUTH_SERVICE = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name

# Codes auth_svc answers deliberately; their messages are written for the end user.
_PASS_THROUGH = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.PERMISSION_DENIED,
    }
)


@dataclass(frozen=True)
class Identity:
    """Who a verified token belongs to."""

    user_id: str
    email: str


def _translate(exc: grpc.RpcError, what: str) -> ApiError:
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = (exc.details() if isinstance(exc, grpc.Call) else None) or ""
    if code in _PASS_THROUGH:
        return ApiError(code, details or code.name.lower())
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ApiError(code, f"the auth service did not answer in time ({what})")
    log.warning("auth %s failed: %s %s", what, code, details)
    return ApiError(grpc.StatusCode.UNAVAILABLE, f"the auth service is unavailable ({what})")


class AuthClient:
    """A traced channel to auth_svc and the three calls the gateway makes."""

    def __init__(self, target: str, *, timeout_s: float) -> None:
        self._channel = traced_channel(target)
        self._stub = auth_pb2_grpc.AuthServiceStub(self._channel)
        # Health checks run every few seconds: a plain channel keeps them out of the traces.
        self._health_channel = grpc.insecure_channel(target)
        self._health = health_pb2_grpc.HealthStub(self._health_channel)
        self._timeout_s = timeout_s

    def verify(self, token: str) -> Identity:
        try:
            reply = self._stub.Verify(auth_pb2.VerifyRequest(token=token), timeout=self._timeout_s)
        except grpc.RpcError as exc:
            raise _translate(exc, "verify") from None
        return Identity(user_id=reply.user_id, email=reply.email)

    def register(self, email: str, password: str) -> auth_pb2.RegisterResponse:
        try:
            reply: auth_pb2.RegisterResponse = self._stub.Register(
                auth_pb2.RegisterRequest(email=email, password=password),
                timeout=self._timeout_s * HASHING_DEADLINE_FACTOR,
            )
        except grpc.RpcError as exc:
            raise _translate(exc, "register") from None
        return reply

    def login(self, email: str, password: str) -> auth_pb2.LoginResponse:
        try:
            reply: auth_pb2.LoginResponse = self._stub.Login(
                auth_pb2.LoginRequest(email=email, password=password),
                timeout=self._timeout_s * HASHING_DEADLINE_FACTOR,
            )
        except grpc.RpcError as exc:
            raise _translate(exc, "login") from None
        return reply

    def serving(self) -> bool:
        """True when auth_svc's own health check says SERVING (its MySQL is up too)."""
        try:
            reply = self._health.Check(
                health_pb2.HealthCheckRequest(service=AUTH_SERVICE), timeout=self._timeout_s
            )
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def close(self) -> None:
        self._channel.close()
        self._health_channel.close()
