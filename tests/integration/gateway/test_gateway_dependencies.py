"""When MongoDB, RabbitMQ or auth_svc are down or slow: clear answers, nothing half-written."""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pymongo
import pytest
from mp3mesh.auth.v1 import auth_pb2, auth_pb2_grpc
from mp3mesh.jobs.v1 import jobs_pb2

from auth_svc.server import serve as serve_auth
from meshkit import amqp
from meshkit.grpc_server import GrpcServer, start_grpc_server
from tests.fixtures.mongo import start_nx, stop_process
from tests.fixtures.processes import health_status, wait_until
from tests.fixtures.rabbit import drain_queue, rabbitmqctl, url_for_vhost, wait_for_depth
from tests.integration.auth.conftest import auth_config
from tests.integration.gateway.conftest import Gateway, User, assert_error, media_files

pytestmark = pytest.mark.integration

SAMPLE = next(p for p in media_files() if p.name.startswith("go-mp4"))
UNAVAILABLE, DEADLINE_EXCEEDED = 14, 4


def upload(gateway: Gateway, token: str) -> Any:
    with gateway.client(token) as client:
        return client.post("/v1/videos", files={"file": (SAMPLE.name, SAMPLE.read_bytes())})


def readyz(gateway: Gateway) -> tuple[int, dict[str, Any]]:
    with gateway.client() as client:
        reply = client.get("/readyz")
    return reply.status_code, reply.json()


def counts(uri: str) -> dict[str, int]:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        uri, serverSelectionTimeoutMS=5000
    )
    try:
        db = client.get_default_database()
        return {
            name: len(list(db[name].find({}, {"_id": 1})))
            for name in ("jobs", "videos.files", "videos.chunks")
        }
    finally:
        client.close()


def test_mongodb_stopped_is_503_and_nothing_half_written(
    make_gateway: Callable[..., Gateway], user: User, tmp_path: Path
) -> None:
    data_dir = tmp_path / "nx"
    proc, uri = start_nx(data_dir)
    try:
        gateway = make_gateway(mongo_uri=f"{uri}gw")
        assert upload(gateway, user.token).status_code == 202
        before = counts(f"{uri}gw")
        assert (before["jobs"], before["videos.files"]) == (1, 1)
    finally:
        stop_process(proc)

    reply = upload(gateway, user.token)
    assert_error(reply, 503, UNAVAILABLE, "unavailable")
    with gateway.client(user.token) as client:
        assert_error(client.get("/v1/jobs"), 503, UNAVAILABLE, "unavailable")
    wait_until(lambda: readyz(gateway)[0] == 503, timeout_s=20, what="/readyz 503")
    assert readyz(gateway)[1]["dependencies"]["mongodb"] == "down"
    assert health_status(gateway.grpc_target) == "NOT_SERVING"

    proc, uri = start_nx(data_dir)  # the same data, on a new port
    try:
        assert counts(f"{uri}gw") == before
    finally:
        stop_process(proc)


@pytest.fixture
def late_vhost() -> Iterator[str]:
    """AMQP URL of a vhost that does not exist yet (the broker refuses the connection)."""
    vhost = f"mp3mesh-t-late-{secrets.token_hex(4)}"
    yield vhost
    with contextlib.suppress(RuntimeError):  # never created
        rabbitmqctl("delete_vhost", vhost)


def test_rabbitmq_down_is_503_before_the_body_and_nothing_is_written(
    make_gateway: Callable[..., Gateway], user: User, late_vhost: str, mongo_server: str
) -> None:
    mongo_uri = f"{mongo_server}gw_{secrets.token_hex(6)}"
    gateway = make_gateway(
        amqp_url=url_for_vhost(late_vhost), mongo_uri=mongo_uri, wait_ready=False
    )
    wait_until(
        lambda: (
            readyz(gateway)[1]["dependencies"]
            == {"auth": "up", "mongodb": "up", "rabbitmq": "down"}
        ),
        timeout_s=20,
        what="readiness to see the broker down",
    )
    assert readyz(gateway)[0] == 503
    assert health_status(gateway.grpc_target) == "NOT_SERVING"
    reply = upload(gateway, user.token)
    assert_error(reply, 503, UNAVAILABLE, "rabbitmq unavailable")
    assert counts(mongo_uri) == {"jobs": 0, "videos.files": 0, "videos.chunks": 0}


def test_a_job_left_in_the_outbox_is_published_once_when_rabbitmq_is_back(
    make_gateway: Callable[..., Gateway], user: User, late_vhost: str, mongo_server: str
) -> None:
    """A publish that failed after the video was stored (the broker died mid-upload) leaves
    the job QUEUED with its outbox flag; the relay publishes it when the broker returns."""
    url = url_for_vhost(late_vhost)
    # A database of its own: the session gateway's relay would publish the pending job
    # too (to its own vhost) — right for replicas, wrong for this test's count.
    gateway = make_gateway(
        amqp_url=url, mongo_uri=f"{mongo_server}gw_{secrets.token_hex(6)}", wait_ready=False
    )
    wait_until(
        lambda: readyz(gateway)[1]["dependencies"]["mongodb"] == "up",
        timeout_s=20,
        what="MongoDB up",
    )
    pending = gateway.jobs().create(
        jobs_pb2.Job(
            job_id=secrets.token_hex(16),
            owner_id=user.user_id,
            owner_email=user.email,
            filename="left.mp4",
            state=jobs_pb2.JOB_STATE_QUEUED,
            bitrate_kbps=192,
        )
    )
    job_id = pending.job_id
    doc = gateway.jobs().collection.find_one({"job_id": job_id})
    assert doc is not None and doc["publish_pending"] is True

    rabbitmqctl("add_vhost", late_vhost)
    rabbitmqctl("set_permissions", "-p", late_vhost, "guest", ".*", ".*", ".*")
    assert wait_for_depth(url, amqp.QUEUE_VIDEO, 1, timeout_s=30) == 1
    wait_until(
        lambda: "publish_pending" not in (gateway.jobs().collection.find_one({"job_id": job_id})),
        timeout_s=10,
        what="the outbox flag to clear",
    )
    messages = drain_queue(url, amqp.QUEUE_VIDEO)
    assert [m.properties.message_id for m in messages] == [job_id]
    wait_until(lambda: readyz(gateway)[0] == 200, timeout_s=20, what="/readyz 200")
    assert health_status(gateway.grpc_target) == "SERVING"


def test_auth_stopped_is_503(
    make_gateway: Callable[..., Gateway], user: User, mysql_url: str
) -> None:
    auth = serve_auth(auth_config(mysql_url))
    target = f"127.0.0.1:{auth.port}"
    wait_until(lambda: health_status(target) == "SERVING", timeout_s=30, what="auth")
    gateway = make_gateway(auth_target=target)
    auth.stop(0)

    assert_error(upload(gateway, user.token), 503, UNAVAILABLE, "auth service")
    with gateway.client(user.token) as client:
        assert_error(client.get("/v1/jobs"), 503, UNAVAILABLE, "auth service")
        signup = client.post("/v1/users", json={"email": "a@example.com", "password": "x" * 12})
        assert_error(signup, 503, UNAVAILABLE, "auth service")
    wait_until(lambda: readyz(gateway)[0] == 503, timeout_s=20, what="/readyz 503")
    assert readyz(gateway)[1]["dependencies"]["auth"] == "down"


class SlowAuth(auth_pb2_grpc.AuthServiceServicer):
    """An auth_svc stand-in that takes its time answering Verify."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.released = threading.Event()

    def Verify(
        self, request: auth_pb2.VerifyRequest, context: grpc.ServicerContext
    ) -> auth_pb2.VerifyResponse:
        self.released.wait(self.delay_s)
        return auth_pb2.VerifyResponse(user_id="u", email="u@example.com")


@pytest.fixture
def slow_auth() -> Iterator[tuple[GrpcServer, SlowAuth]]:
    servicer = SlowAuth(delay_s=5)
    server = start_grpc_server(
        port=0,
        bind_host="127.0.0.1",
        register=lambda s: auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, s),
        service_names=["mp3mesh.auth.v1.AuthService"],
    )
    server.set_serving(True)
    yield server, servicer
    servicer.released.set()
    server.stop(0)


def test_auth_slow_is_504_not_a_hang(
    make_gateway: Callable[..., Gateway], slow_auth: tuple[GrpcServer, SlowAuth]
) -> None:
    server, _ = slow_auth
    gateway = make_gateway(auth_target=f"127.0.0.1:{server.port}", AUTH_TIMEOUT_S="0.3")
    # Had the gateway waited for the 5 s Verify, it would have accepted the upload (202).
    reply = upload(gateway, "some-token")
    assert_error(reply, 504, DEADLINE_EXCEEDED, "did not answer in time")
    with gateway.client("some-token") as client:
        assert_error(client.get("/v1/jobs/x/mp3"), 504, DEADLINE_EXCEEDED)


def test_queues_declared_with_another_delivery_limit_are_used_as_they_are(
    make_gateway: Callable[..., Gateway], user: User, late_vhost: str, mongo_server: str
) -> None:
    """The converter declares `video` with its own DELIVERY_LIMIT; the broker refuses a
    different redeclaration, which must not keep the gateway from being ready."""
    rabbitmqctl("add_vhost", late_vhost)
    rabbitmqctl("set_permissions", "-p", late_vhost, "guest", ".*", ".*", ".*")
    url = url_for_vhost(late_vhost)
    with amqp.open_channel(url) as channel:
        amqp.declare_topology(channel, delivery_limit=2)
    gateway = make_gateway(amqp_url=url, mongo_uri=f"{mongo_server}gw_{secrets.token_hex(6)}")
    reply = upload(gateway, user.token)
    assert reply.status_code == 202
    messages = drain_queue(url, amqp.QUEUE_VIDEO)
    assert [m.properties.message_id for m in messages] == [reply.json()["job_id"]]
