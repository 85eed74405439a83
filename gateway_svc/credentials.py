"""Reading credentials out of an `Authorization` value (HTTP header or gRPC metadata)."""

from __future__ import annotations

import base64
import binascii

from gateway_svc.errors import unauthenticated

MISSING_TOKEN = "missing credentials: send 'Authorization: Bearer <token>' (from POST /v1/login)"  # noqa: S105


def bearer_token(authorization: str | None) -> str:
    """The token of `Bearer <token>`; UNAUTHENTICATED when absent or another scheme."""
    if not authorization or not authorization.strip():
        raise unauthenticated(MISSING_TOKEN)
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise unauthenticated(f"unsupported authorization scheme {scheme[:20]!r}: use Bearer")
    token = token.strip()
    if not token:
        raise unauthenticated(MISSING_TOKEN)
    return token


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(email, password) of `Basic base64(email:password)`, None for other schemes.

    Malformed Basic credentials are UNAUTHENTICATED rather than ignored: the client meant them.
    """
    if not authorization:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise unauthenticated("malformed Basic credentials") from None
    email, colon, password = decoded.partition(":")
    if not colon:
        raise unauthenticated("malformed Basic credentials: expected email:password")
    return email, password
