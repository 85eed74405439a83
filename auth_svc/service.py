"""The AuthService gRPC handlers: rules from passwords/emails/tokens, storage from users."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import grpc
import pymysql
from google.protobuf.timestamp_pb2 import Timestamp
from mp3mesh.auth.v1 import auth_pb2, auth_pb2_grpc

from auth_svc.emails import email_problem, normalise_email
from auth_svc.passwords import PasswordHashing, password_problem
from auth_svc.tokens import TokenError, TokenService
from auth_svc.users import EmailTakenError, LoginFailures, UserRepository

log = logging.getLogger(__name__)

R = TypeVar("R")
WRONG_CREDENTIALS = "email or password is wrong"


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("unreachable: context.abort raises")


def database_errors_are_unavailable(
    handler: Callable[[Any, Any, grpc.ServicerContext], R],
) -> Callable[[Any, Any, grpc.ServicerContext], R]:
    """A MySQL outage is UNAVAILABLE (retryable), never an opaque UNKNOWN."""

    @functools.wraps(handler)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> R:
        try:
            return handler(self, request, context)
        except pymysql.MySQLError:
            log.exception("user database error")
            _abort(context, grpc.StatusCode.UNAVAILABLE, "the user database is unavailable")

    return wrapper


def _timestamp(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(
        self,
        *,
        users: UserRepository,
        failures: LoginFailures,
        hashing: PasswordHashing,
        tokens: TokenService,
        max_failures: int,
    ) -> None:
        self._users = users
        self._failures = failures
        self._hashing = hashing
        self._tokens = tokens
        self._max_failures = max_failures

    @database_errors_are_unavailable
    def Register(
        self, request: auth_pb2.RegisterRequest, context: grpc.ServicerContext
    ) -> auth_pb2.RegisterResponse:
        email = normalise_email(request.email)
        problem = email_problem(email) or password_problem(request.password, email)
        if problem:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, problem)
        try:
            user = self._users.create(email, self._hashing.hash(request.password))
        except EmailTakenError:
            _abort(context, grpc.StatusCode.ALREADY_EXISTS, "an account with this email exists")
        log.info("user registered", extra={"user_id": user.user_id})
        return auth_pb2.RegisterResponse(user_id=user.user_id, email=user.email)

    @database_errors_are_unavailable
    def Login(
        self, request: auth_pb2.LoginRequest, context: grpc.ServicerContext
    ) -> auth_pb2.LoginResponse:
        email = normalise_email(request.email)
        recent_failures = self._failures.recent(email)
        if recent_failures >= self._max_failures:
            _abort(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "too many failed logins for this email; try again later",
            )
        user = self._users.find_by_email(email)
        # Unknown emails still pay for a hash check: both failures look and take the same.
        check = self._hashing.check(user.password_hash if user else None, request.password)
        if user is None or not check.ok:
            self._failures.record(email)
            _abort(context, grpc.StatusCode.UNAUTHENTICATED, WRONG_CREDENTIALS)
        if check.new_hash:
            self._users.replace_hash(user.user_id, check.new_hash)
        if recent_failures:
            self._failures.clear(email)
        issued = self._tokens.issue(user.user_id, user.email)
        return auth_pb2.LoginResponse(
            access_token=issued.token,
            token_type="Bearer",  # noqa: S106 - the scheme name, not a secret
            expires_at=_timestamp(issued.expires_at),
        )

    def Verify(
        self, request: auth_pb2.VerifyRequest, context: grpc.ServicerContext
    ) -> auth_pb2.VerifyResponse:
        try:
            claims = self._tokens.verify(request.token)
        except TokenError as exc:
            _abort(context, grpc.StatusCode.UNAUTHENTICATED, str(exc))
        return auth_pb2.VerifyResponse(
            user_id=claims.user_id,
            email=claims.email,
            expires_at=_timestamp(claims.expires_at),
            token_id=claims.token_id,
        )
