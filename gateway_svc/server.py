"""Wiring for gateway_svc: `serve()` starts both faces and returns a handle tests can stop.

* REST: uvicorn on its own thread and event loop, on a socket bound here first (so HTTP_PORT=0
  gives a real port to report, and a taken port fails at start with one clear line).
* gRPC: GatewayService + health + reflection via meshkit.grpc_server on GRPC_PORT.
* Health is SERVING only while auth, MongoDB and RabbitMQ answer (HealthWatcher over
  `Readiness`, which `/readyz` shows too); the outbox relay re-publishes jobs whose conversion
  request could not be published.

Stopping (SIGTERM): health NOT_SERVING and `/readyz` 503 first, new uploads refused (503),
in-flight uploads given `grace_s` to finish, then uvicorn and the gRPC server stop, then the
relay, the broker connection and the MongoDB client close.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Any

import pymongo
import uvicorn
from mp3mesh.gateway.v1 import gateway_pb2, gateway_pb2_grpc

from gateway_svc.auth_client import AuthClient
from gateway_svc.config import GatewayConfig
from gateway_svc.core import GatewayCore
from gateway_svc.grpc_face import GatewayServicer
from gateway_svc.http_rules import http_rules
from gateway_svc.openapi import build_openapi
from gateway_svc.outbox import Outbox, OutboxRelay
from gateway_svc.readiness import AUTH, MONGODB, RABBITMQ, Readiness
from gateway_svc.rest_app import build_app
from meshkit import mongo
from meshkit.amqp import Publisher
from meshkit.blobstore import BlobStore
from meshkit.grpc_server import GrpcServer, PortInUseError, start_grpc_server
from meshkit.health import HealthWatcher
from meshkit.jobs import JobStore
from observability.grpc import traced_server_interceptors
from observability.tracing import init_tracing

log = logging.getLogger(__name__)

SERVICE = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"]
DRAIN_S = 30.0
HEALTH_INTERVAL_S = 1.0


@dataclass
class GatewayServer:
    """A running gateway; `.stop()` drains and stops everything `serve()` started."""

    http: uvicorn.Server
    http_thread: threading.Thread
    http_port: int
    grpc: GrpcServer
    core: GatewayCore
    readiness: Readiness
    watcher: HealthWatcher
    relay: OutboxRelay
    publisher: Publisher
    auth: AuthClient
    mongo_client: pymongo.MongoClient[dict[str, Any]]

    @property
    def grpc_port(self) -> int:
        return self.grpc.port

    def stop(self, grace_s: float = DRAIN_S) -> None:
        self.readiness.set_draining()
        self.watcher.stop()
        self.grpc.set_serving(False)
        if not self.core.gate.drain(grace_s):
            log.warning("%d uploads still running at shutdown", self.core.gate.inflight)
        self.http.should_exit = True
        self.grpc.stop(min(grace_s, 5.0))
        self.http_thread.join(timeout=grace_s + 5)
        self.relay.stop()
        self.publisher.close()
        self.auth.close()
        self.mongo_client.close()


def bind_http_socket(host: str, port: int) -> socket.socket:
    """The REST listening socket, bound now so port 0 resolves and conflicts fail fast."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"cannot listen on {host}:{port}: the port is in use; stop the other process"
                " or set HTTP_PORT"
            ) from None
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _run_uvicorn(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        asyncio.run(server.serve(sockets=[sock]))
    except Exception:
        log.exception("the REST server stopped with an error")


def serve(config: GatewayConfig) -> GatewayServer:
    init_tracing("gateway_svc", config.environ, instrument_pymongo=True)
    mongo_client = mongo.connect(config.mongo_uri, app_name="gateway_svc")
    db = mongo.default_database(mongo_client)
    jobs = JobStore(db)
    blobs = BlobStore(db)
    publisher = Publisher(config.amqp_url, app_id="gateway_svc")
    outbox = Outbox(jobs, publisher, config.amqp_url)
    auth = AuthClient(config.auth_target, timeout_s=config.auth_timeout_s)
    indexes_ready = False

    def mongo_ready() -> bool:
        nonlocal indexes_ready
        if not mongo.ping(mongo_client):
            return False
        if not indexes_ready:
            jobs.ensure_indexes()
            blobs.ensure_indexes()
            indexes_ready = True
        return True

    readiness = Readiness({AUTH: auth.serving, MONGODB: mongo_ready, RABBITMQ: outbox.broker_ready})
    core = GatewayCore(
        auth=auth,
        jobs=jobs,
        blobs=blobs,
        outbox=outbox,
        base_url=config.public_base_url,
        max_upload_bytes=config.max_upload_bytes,
        dependencies_down=readiness.down,
    )
    rules = http_rules(SERVICE)
    openapi = build_openapi(
        rules,
        base_url=config.public_base_url,
        upload_response=gateway_pb2.UploadVideoResponse.DESCRIPTOR,
    )
    app = build_app(core, rules, readiness, openapi)
    sock = bind_http_socket(config.common.bind_host, config.http_port)
    http_port = int(sock.getsockname()[1])
    uvicorn_config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    http = uvicorn.Server(uvicorn_config)
    servicer = GatewayServicer(core)
    try:
        grpc_server = start_grpc_server(
            port=config.common.grpc_port,
            bind_host=config.common.bind_host,
            register=lambda s: gateway_pb2_grpc.add_GatewayServiceServicer_to_server(servicer, s),
            service_names=[SERVICE.full_name],
            interceptors=traced_server_interceptors(),
        )
    except PortInUseError:
        sock.close()
        raise
    http_thread = threading.Thread(
        target=_run_uvicorn, args=(http, sock), name="uvicorn", daemon=True
    )
    http_thread.start()
    watcher = HealthWatcher(grpc_server, readiness.check, interval_s=HEALTH_INTERVAL_S).start()
    relay = OutboxRelay(outbox).start()
    log.info(
        "gateway_svc listening",
        extra={"http_port": http_port, "grpc_port": grpc_server.port},
    )
    return GatewayServer(
        http=http,
        http_thread=http_thread,
        http_port=http_port,
        grpc=grpc_server,
        core=core,
        readiness=readiness,
        watcher=watcher,
        relay=relay,
        publisher=publisher,
        auth=auth,
        mongo_client=mongo_client,
    )
