"""Every way a token can be wrong is its own test, and each says why."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from auth_svc.tokens import TokenError, TokenService

SECRET = "s" * 48
OTHER_SECRET = "o" * 48


def service(**overrides: object) -> TokenService:
    options: dict[str, object] = {"issuer": "mp3mesh-auth", "audience": "mp3mesh", "ttl_s": 600}
    options.update(overrides)
    return TokenService(str(options.pop("secret", SECRET)), **options)  # type: ignore[arg-type]


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": "user-1",
        "email": "a@example.com",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": "mp3mesh-auth",
        "aud": "mp3mesh",
        "jti": "j1",
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def assert_rejected(token: str, reason: str) -> None:
    with pytest.raises(TokenError, match=reason):
        service().verify(token)


def test_issued_token_round_trips_with_all_claims() -> None:
    issued = service().issue("user-1", "a@example.com")
    verified = service().verify(issued.token)
    assert (verified.user_id, verified.email) == ("user-1", "a@example.com")
    assert verified.expires_at == issued.expires_at
    decoded = jwt.decode(issued.token, options={"verify_signature": False})
    assert set(decoded) >= {"sub", "email", "iat", "exp", "iss", "aud", "jti"}
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"


def test_each_token_has_a_unique_id() -> None:
    first, second = (service().issue("u", "a@example.com") for _ in range(2))
    assert service().verify(first.token).token_id != service().verify(second.token).token_id


def test_bad_signature_is_rejected() -> None:
    assert_rejected(jwt.encode(claims(), OTHER_SECRET, algorithm="HS256"), "signature is invalid")


def test_alg_none_is_rejected() -> None:
    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}."
    assert_rejected(token, "algorithm is not allowed")


def test_other_hmac_algorithm_is_rejected() -> None:
    long_secret = SECRET * 2  # HS512 wants 64 bytes; a short key would only add a warning
    token = jwt.encode(claims(), long_secret, algorithm="HS512")
    with pytest.raises(TokenError, match="algorithm is not allowed"):
        service(secret=long_secret).verify(token)


def test_expired_token_is_rejected() -> None:
    past = int(time.time()) - 3600
    token = jwt.encode(claims(iat=past, nbf=past, exp=past + 60), SECRET, algorithm="HS256")
    assert_rejected(token, "expired")


def test_token_not_yet_valid_is_rejected() -> None:
    future = int(time.time()) + 3600
    token = jwt.encode(claims(nbf=future, exp=future + 600), SECRET, algorithm="HS256")
    assert_rejected(token, "not yet valid")


def test_token_issued_in_the_future_is_rejected() -> None:
    future = int(time.time()) + 3600
    token = jwt.encode(claims(iat=future, exp=future + 600), SECRET, algorithm="HS256")
    assert_rejected(token, "not yet valid")


def test_wrong_issuer_is_rejected() -> None:
    assert_rejected(jwt.encode(claims(iss="evil"), SECRET, algorithm="HS256"), "unknown issuer")


def test_wrong_audience_is_rejected() -> None:
    token = jwt.encode(claims(aud="other-app"), SECRET, algorithm="HS256")
    assert_rejected(token, "another audience")


def test_missing_expiry_is_rejected() -> None:
    assert_rejected(jwt.encode(claims(exp=None), SECRET, algorithm="HS256"), "'exp' claim")


def test_missing_subject_is_rejected() -> None:
    assert_rejected(jwt.encode(claims(sub=None), SECRET, algorithm="HS256"), "'sub' claim")


def test_malformed_token_is_rejected() -> None:
    assert_rejected("not.a.jwt", "malformed")


def test_garbage_is_rejected() -> None:
    assert_rejected("garbage", "malformed")


def test_missing_token_is_rejected() -> None:
    assert_rejected("", "missing")
