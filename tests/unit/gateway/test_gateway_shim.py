"""The grpc-gateway-style shim: rules from descriptors, JSON/query/path → messages, errors."""

from __future__ import annotations

import grpc
import pytest
from mp3mesh.gateway.v1 import gateway_pb2

from gateway_svc.credentials import MISSING_TOKEN, basic_credentials, bearer_token
from gateway_svc.errors import HTTP_STATUS, ApiError, code_number, error_body
from gateway_svc.http_rules import http_rules
from gateway_svc.json_mapping import decode_request, encode_response, is_json_content_type

SERVICE = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"]
RULES = {rule.name: rule for rule in http_rules(SERVICE)}


def test_rules_come_from_the_proto_annotations() -> None:
    assert {name: (r.verb, r.template) for name, r in RULES.items()} == {
        "CreateUser": ("POST", "/v1/users"),
        "Login": ("POST", "/v1/login"),
        "GetJob": ("GET", "/v1/jobs/{job_id}"),
        "ListJobs": ("GET", "/v1/jobs"),
        "DeleteJob": ("DELETE", "/v1/jobs/{job_id}"),
    }
    assert RULES["GetJob"].path_fields == ("job_id",)
    assert RULES["GetJob"].response_body == "job"
    assert RULES["CreateUser"].body == "*"
    assert "UploadVideo" not in RULES and "DownloadMp3" not in RULES  # streaming: by hand


def decode(name: str, *, path=None, query=(), body=b"", content_type="application/json"):  # type: ignore[no-untyped-def]
    return decode_request(
        RULES[name], path_params=path or {}, query=query, body=body, content_type=content_type
    )


def test_body_accepts_proto_and_json_names() -> None:
    snake = decode("Login", body=b'{"email": "a@b.c", "password": "p"}')
    assert snake == gateway_pb2.LoginRequest(email="a@b.c", password="p")
    camel = decode("ListJobs", query=[("pageSize", "5"), ("pageToken", "t")])
    assert camel == gateway_pb2.ListJobsRequest(page_size=5, page_token="t")


def test_empty_body_is_an_empty_message() -> None:
    assert decode("Login", body=b"", content_type=None) == gateway_pb2.LoginRequest()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"email": ', "malformed JSON"),
        (b"\xff\xfe", "malformed JSON"),
        (b'{"emial": "x"}', "emial"),
        (b'{"email": 5}', "email"),
        (b"[1, 2]", "invalid request body"),
    ],
)
def test_bad_bodies_are_400(body: bytes, words: str) -> None:
    with pytest.raises(ApiError) as caught:
        decode("CreateUser", body=body)
    assert caught.value.http_status == 400 and words in caught.value.message


def test_non_json_body_is_415() -> None:
    with pytest.raises(ApiError) as caught:
        decode("Login", body=b"email=x", content_type="application/x-www-form-urlencoded")
    assert caught.value.http_status == 415
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ([("page_size", "ten")], "not an integer"),
        ([("nope", "1")], "unknown query parameter"),
        ([("page_size", "1"), ("page_size", "2")], "more than once"),
    ],
)
def test_bad_query_parameters_are_400(query: list[tuple[str, str]], words: str) -> None:
    with pytest.raises(ApiError) as caught:
        decode("ListJobs", query=query)
    assert caught.value.http_status == 400 and words in caught.value.message


def test_path_variables_fill_their_fields_and_cannot_be_overridden_by_query() -> None:
    assert decode("GetJob", path={"job_id": "abc"}) == gateway_pb2.GetJobRequest(job_id="abc")
    with pytest.raises(ApiError):
        decode("GetJob", path={"job_id": "abc"}, query=[("job_id", "other")])


def test_response_body_and_json_names() -> None:
    job = gateway_pb2.Job(job_id="j", state=3, video_size_bytes=10)
    job.create_time.FromSeconds(0)
    rendered = encode_response(RULES["GetJob"], gateway_pb2.GetJobResponse(job=job))
    assert rendered == {
        "job_id": "j",
        "state": "JOB_STATE_DONE",
        "video_size_bytes": "10",
        "create_time": "1970-01-01T00:00:00Z",
    }


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        (None, True),
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("application/merge-patch+json", True),
        ("text/plain", False),
        ("multipart/form-data; boundary=x", False),
    ],
)
def test_json_content_types(content_type: str | None, ok: bool) -> None:
    assert is_json_content_type(content_type) is ok


def test_status_table_is_grpc_gateways() -> None:
    expected = {
        "INVALID_ARGUMENT": 400,
        "FAILED_PRECONDITION": 400,
        "OUT_OF_RANGE": 400,
        "UNAUTHENTICATED": 401,
        "PERMISSION_DENIED": 403,
        "NOT_FOUND": 404,
        "ALREADY_EXISTS": 409,
        "ABORTED": 409,
        "RESOURCE_EXHAUSTED": 429,
        "CANCELLED": 499,
        "UNIMPLEMENTED": 501,
        "UNAVAILABLE": 503,
        "DEADLINE_EXCEEDED": 504,
        "UNKNOWN": 500,
        "INTERNAL": 500,
        "DATA_LOSS": 500,
    }
    assert {code.name: status for code, status in HTTP_STATUS.items() if code.name != "OK"} == (
        expected
    )


def test_error_body_and_overrides() -> None:
    assert error_body(grpc.StatusCode.NOT_FOUND, "gone") == {
        "code": 5,
        "message": "gone",
        "details": [],
    }
    assert code_number(grpc.StatusCode.UNAUTHENTICATED) == 16
    override = ApiError(grpc.StatusCode.FAILED_PRECONDITION, "not ready", http_status=409)
    assert (override.http_status, override.body()["code"]) == (409, 9)


def test_credentials() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("  bearer   abc ") == "abc"
    for bad in (None, "", "Bearer", "Bearer   ", "Token abc"):
        with pytest.raises(ApiError) as caught:
            bearer_token(bad)
        assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(ApiError) as missing:
        bearer_token(None)
    assert missing.value.message == MISSING_TOKEN
    assert basic_credentials("Basic YTpiOmM=") == ("a", "b:c")
    assert basic_credentials("Bearer x") is None
    assert basic_credentials(None) is None
    for bad in ("Basic !!!", "Basic YWJj"):  # not base64; no colon
        with pytest.raises(ApiError):
            basic_credentials(bad)
