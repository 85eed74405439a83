"""Issuing and verifying access tokens (JWT, HS256 pinned).

The algorithm list on decode is pinned to HS256, so `alg: none` and algorithm-confusion
tokens fail; every claim we rely on is required, and each failure maps to one plain reason.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "email", "iat", "nbf", "exp", "iss", "aud", "jti"]


class TokenError(Exception):
    """The token is not acceptable; str(error) says why, for the caller."""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: int


@dataclass(frozen=True)
class Claims:
    user_id: str
    email: str
    expires_at: int
    token_id: str


class TokenService:
    def __init__(
        self, secret: str, *, issuer: str, audience: str, ttl_s: int, leeway_s: int = 5
    ) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._ttl_s = ttl_s
        self._leeway_s = leeway_s

    def issue(self, user_id: str, email: str, *, now: float | None = None) -> IssuedToken:
        issued = int(time.time() if now is None else now)
        expires = issued + self._ttl_s
        claims = {
            "sub": user_id,
            "email": email,
            "iat": issued,
            "nbf": issued,
            "exp": expires,
            "iss": self._issuer,
            "aud": self._audience,
            "jti": uuid.uuid4().hex,
        }
        return IssuedToken(jwt.encode(claims, self._secret, algorithm=ALGORITHM), expires)

    def verify(self, token: str) -> Claims:
        if not token:
            raise TokenError("token is missing")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={"require": REQUIRED_CLAIMS, "strict_aud": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenError("token is not yet valid") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenError("token was issued for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenError("token was issued by an unknown issuer") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise TokenError(f"token algorithm is not allowed (only {ALGORITHM})") from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenError("token signature is invalid") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"token lacks the required '{exc.claim}' claim") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenError("token is malformed") from exc
        if not isinstance(claims["sub"], str) or not isinstance(claims["email"], str):
            raise TokenError("token is malformed")
        return Claims(
            user_id=claims["sub"],
            email=claims["email"],
            expires_at=int(claims["exp"]),
            token_id=str(claims["jti"]),
        )
