"""Every bad input has its own status code and JSON error body, and leaves nothing behind."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
import jwt
import pytest

from tests.integration.gateway.conftest import (
    JWT_SECRET,
    Gateway,
    User,
    assert_error,
    media_files,
)

pytestmark = pytest.mark.integration

SAMPLE = next(p for p in media_files() if p.name.startswith("go-mp4"))

INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, UNAUTHENTICATED = 3, 5, 8, 16
UNIMPLEMENTED, FAILED_PRECONDITION = 12, 9


def upload_with(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/videos", files={"file": ("a.mp4", SAMPLE.read_bytes())})


def make_token(secret: str, *, expires_in_s: int) -> str:
    now = int(time.time())
    claims = {
        "sub": "someone",
        "email": "someone@example.com",
        "iat": now - 7200,
        "nbf": now - 7200,
        "exp": now + expires_in_s,
        "iss": "mp3mesh-auth",
        "aud": "mp3mesh",
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def stored_counts(gateway: Gateway) -> tuple[int, int, int]:
    """(jobs, video files, video chunks) in the gateway's database."""
    db = gateway.db()
    return (
        len(list(db["jobs"].find({}, {"_id": 1}))),
        len(list(db["videos.files"].find({}, {"_id": 1}))),
        len(list(db["videos.chunks"].find({}, {"_id": 1}))),
    )


@pytest.fixture
def fresh_gateway(make_gateway: Callable[..., Gateway], mongo_server: str) -> Gateway:
    """A gateway on a database of its own (to count what is stored) with a 300 kB cap."""
    return make_gateway(
        mongo_uri=f"{mongo_server}gw_{uuid.uuid4().hex[:12]}", MAX_UPLOAD_BYTES="300000"
    )


# ---- credentials -----------------------------------------------------------------------


def test_garbage_token_is_401_with_an_invalid_token_challenge(gateway: Gateway) -> None:
    with gateway.client("not-a-jwt") as client:
        reply = upload_with(client)
    assert_error(reply, 401, UNAUTHENTICATED)
    assert 'error="invalid_token"' in reply.headers["www-authenticate"]


def test_expired_token_is_401(gateway: Gateway) -> None:
    with gateway.client(make_token(JWT_SECRET, expires_in_s=-3600)) as client:
        reply = upload_with(client)
    assert_error(reply, 401, UNAUTHENTICATED, "expired")
    assert "expired" in reply.headers["www-authenticate"]


def test_forged_token_is_401(gateway: Gateway) -> None:
    forged = make_token("someone-elses-secret-" + "z" * 24, expires_in_s=3600)
    with gateway.client(forged) as client:
        reply = client.get("/v1/jobs")
    assert_error(reply, 401, UNAUTHENTICATED)


def test_other_scheme_is_401(gateway: Gateway) -> None:
    with gateway.client() as client:
        reply = client.get("/v1/jobs", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert_error(reply, 401, UNAUTHENTICATED, "Bearer")


def test_wrong_password_is_401(gateway: Gateway, user: User) -> None:
    with gateway.client() as client:
        reply = client.post("/v1/login", json={"email": user.email, "password": "wrong" * 4})
    assert_error(reply, 401, UNAUTHENTICATED, "wrong")
    assert reply.headers["www-authenticate"].startswith("Basic")


def test_taken_email_is_409_and_weak_password_400(gateway: Gateway, user: User) -> None:
    with gateway.client() as client:
        taken = client.post("/v1/users", json={"email": user.email, "password": "x" * 8 + "yz1"})
        weak = client.post("/v1/users", json={"email": "weak@example.com", "password": "short"})
    assert_error(taken, 409, 6, "exists")
    assert_error(weak, 400, INVALID_ARGUMENT, "password")


# ---- upload bodies ---------------------------------------------------------------------


def test_two_files_are_400(api: httpx.Client) -> None:
    data = SAMPLE.read_bytes()
    reply = api.post("/v1/videos", files=[("file", ("a.mp4", data)), ("file", ("b.mp4", data))])
    assert_error(reply, 400, INVALID_ARGUMENT, "two files")


def test_no_file_field_is_400(api: httpx.Client) -> None:
    reply = api.post("/v1/videos", files={"video": ("a.mp4", SAMPLE.read_bytes())})
    assert_error(reply, 400, INVALID_ARGUMENT, "'file'")
    only_text = api.post("/v1/videos", data={"note": "hello"}, files={})
    assert only_text.status_code in (400, 415)


def test_multipart_without_any_file_is_400(api: httpx.Client) -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--b--\r\n'
    reply = api.post(
        "/v1/videos", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert_error(reply, 400, INVALID_ARGUMENT, "no file")


def test_empty_file_is_400(api: httpx.Client) -> None:
    reply = api.post("/v1/videos", files={"file": ("empty.mp4", b"")})
    assert_error(reply, 400, INVALID_ARGUMENT, "empty")
    raw = api.post(
        "/v1/videos",
        params={"filename": "empty.mp4"},
        content=b"",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert_error(raw, 400, INVALID_ARGUMENT, "empty")


def test_raw_body_without_filename_is_400(api: httpx.Client) -> None:
    reply = api.post(
        "/v1/videos",
        content=SAMPLE.read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert_error(reply, 400, INVALID_ARGUMENT, "filename")


@pytest.mark.parametrize("bitrate", ["95", "321", "loud"])
def test_bitrate_out_of_range_is_400(api: httpx.Client, bitrate: str) -> None:
    reply = api.post(
        "/v1/videos",
        params={"bitrate_kbps": bitrate},
        files={"file": ("a.mp4", SAMPLE.read_bytes())},
    )
    assert_error(reply, 400, INVALID_ARGUMENT, "bitrate_kbps")


def test_text_file_renamed_mp4_is_415_and_nothing_is_kept(
    fresh_gateway: Gateway, user: User
) -> None:
    before = stored_counts(fresh_gateway)
    with fresh_gateway.client(user.token) as client:
        reply = client.post(
            "/v1/videos", files={"file": ("notes.mp4", b"just some text, honestly\n" * 40)}
        )
    assert_error(reply, 415, INVALID_ARGUMENT, "not a video")
    assert stored_counts(fresh_gateway) == before
    assert fresh_gateway.video_messages() == []


def test_unsupported_upload_content_type_is_415(api: httpx.Client) -> None:
    reply = api.post(
        "/v1/videos",
        params={"filename": "a.mp4"},
        content=b"{}",
        headers={"Content-Type": "application/json"},
    )
    assert_error(reply, 415, INVALID_ARGUMENT, "Content-Type")


def test_declared_length_over_the_cap_is_413_before_reading(
    fresh_gateway: Gateway, user: User
) -> None:
    before = stored_counts(fresh_gateway)
    with fresh_gateway.client(user.token) as client:
        reply = client.post(
            "/v1/videos",
            params={"filename": "big.mp4"},
            content=SAMPLE.read_bytes()[:64] + bytes(400_000),
            headers={"Content-Type": "video/mp4"},
        )
    assert_error(reply, 413, RESOURCE_EXHAUSTED, "larger than")
    assert stored_counts(fresh_gateway) == before


def test_streaming_past_the_cap_is_413_and_the_partial_file_is_removed(
    fresh_gateway: Gateway, user: User
) -> None:
    before = stored_counts(fresh_gateway)
    head = SAMPLE.read_bytes()[:1024]

    def body() -> object:  # no Content-Length: the cap is found while streaming
        yield head
        for _ in range(40):
            yield bytes(10_000)

    with fresh_gateway.client(user.token) as client:
        reply = client.post(
            "/v1/videos",
            params={"filename": "big.mp4"},
            content=body(),  # type: ignore[arg-type]
            headers={"Content-Type": "video/mp4"},
        )
    assert_error(reply, 413, RESOURCE_EXHAUSTED, "larger than")
    assert stored_counts(fresh_gateway) == before
    assert fresh_gateway.video_messages() == []


def test_multipart_past_the_cap_is_413(fresh_gateway: Gateway, user: User) -> None:
    before = stored_counts(fresh_gateway)
    data = SAMPLE.read_bytes()[:1024] + bytes(2_000_000)
    with fresh_gateway.client(user.token) as client:
        reply = client.post("/v1/videos", files={"file": ("big.mp4", data)})
    assert_error(reply, 413, RESOURCE_EXHAUSTED)
    assert stored_counts(fresh_gateway) == before


# ---- JSON routes -----------------------------------------------------------------------


def test_malformed_json_is_400(gateway: Gateway) -> None:
    with gateway.client() as client:
        reply = client.post(
            "/v1/users", content=b'{"email": "x@example.com", ', headers=_json_type()
        )
    assert_error(reply, 400, INVALID_ARGUMENT, "malformed JSON")


def test_unknown_json_field_is_400(gateway: Gateway) -> None:
    with gateway.client() as client:
        reply = client.post("/v1/users", json={"email": "x@example.com", "passwd": "x"})
    assert_error(reply, 400, INVALID_ARGUMENT, "passwd")


def test_json_route_with_form_content_type_is_415(gateway: Gateway) -> None:
    with gateway.client() as client:
        reply = client.post("/v1/login", data={"email": "x@example.com", "password": "y"})
    assert_error(reply, 415, INVALID_ARGUMENT, "application/json")


def test_unknown_route_is_404(gateway: Gateway) -> None:
    with gateway.client() as client:
        reply = client.get("/v1/nothing-here")
    assert_error(reply, 404, NOT_FOUND, "/v1/nothing-here")


def test_wrong_method_is_405_with_allow(gateway: Gateway) -> None:
    with gateway.client() as client:
        reply = client.put("/v1/jobs/abc")
        generated = client.get("/v1/users")
        videos = client.get("/v1/videos")
    assert_error(reply, 405, UNIMPLEMENTED, "PUT")
    assert set(reply.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "DELETE"}
    assert_error(generated, 405, UNIMPLEMENTED)
    assert generated.headers["allow"] == "POST"
    assert_error(videos, 405, UNIMPLEMENTED)


def test_unknown_job_is_404(api: httpx.Client) -> None:
    assert_error(api.get("/v1/jobs/0123456789abcdef"), 404, NOT_FOUND, "not found")
    assert_error(api.get("/v1/jobs/0123456789abcdef/mp3"), 404, NOT_FOUND, "not found")
    assert_error(api.delete("/v1/jobs/0123456789abcdef"), 404, NOT_FOUND, "not found")


def test_another_users_job_and_mp3_are_404_like_unknown(
    gateway: Gateway, api: httpx.Client, other_user: User
) -> None:
    job_id = upload_with(api).json()["job_id"]
    with gateway.client(other_user.token) as other:
        job = other.get(f"/v1/jobs/{job_id}")
        mp3 = other.get(f"/v1/jobs/{job_id}/mp3")
        tutorial = other.get("/download", params={"fid": job_id})
        deleted = other.delete(f"/v1/jobs/{job_id}")
        listed = other.get("/v1/jobs")
    unknown = api.get("/v1/jobs/0123456789abcdef")
    for reply in (job, mp3, tutorial, deleted):
        assert_error(reply, 404, NOT_FOUND)
        assert reply.json() == unknown.json()
    assert listed.json() == {}
    assert api.get(f"/v1/jobs/{job_id}").status_code == 200  # still there for its owner


def test_mp3_of_a_queued_job_is_409(api: httpx.Client) -> None:
    job_id = upload_with(api).json()["job_id"]
    reply = api.get(f"/v1/jobs/{job_id}/mp3")
    assert_error(reply, 409, FAILED_PRECONDITION, "not ready", "JOB_STATE_QUEUED")


@pytest.mark.parametrize(
    "query", ["page_size=101", "page_size=-1", "page_size=ten", "page_token=nonsense", "foo=1"]
)
def test_bad_list_parameters_are_400(api: httpx.Client, query: str) -> None:
    assert_error(api.get(f"/v1/jobs?{query}"), 400, INVALID_ARGUMENT)


def _json_type() -> dict[str, str]:
    return {"Content-Type": "application/json"}
