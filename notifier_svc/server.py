"""Wiring for notifier_svc: `serve()` starts everything and returns a handle tests can stop.

The notifier has no RPCs of its own; its gRPC server exists for `grpc.health.v1` (SERVING only
while the `mp3` consumer is connected and MongoDB answers — SMTP is deliberately not part of
it: a mail server outage is absorbed by retries and must not make Kubernetes restart us) and
for reflection, so `grpcurl -plaintext host:50053 list` works like on every service.

Shutdown order (SIGTERM): health NOT_SERVING → retry pauses are cut short → the consumer
stops taking messages and waits for in-flight handlers (a send in progress completes and is
acked; one that was waiting to retry is handed back to the queue) → gRPC stops → exit.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import pymongo
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from meshkit import mongo
from meshkit.amqp import QUEUE_MP3, Consumer
from meshkit.grpc_server import GrpcServer, start_grpc_server
from meshkit.health import HealthWatcher
from meshkit.jobs import JobStore
from notifier_svc.compose import MailSettings
from notifier_svc.config import NotifierConfig
from notifier_svc.handler import NotificationHandler
from notifier_svc.transport import RetryPolicy, SmtpSender, SmtpTransport
from observability.grpc import traced_server_interceptors
from observability.tracing import init_tracing

log = logging.getLogger(__name__)

DRAIN_S = 20.0
LEASE_MARGIN_S = 30.0


@dataclass
class NotifierServer:
    grpc: GrpcServer
    consumer: Consumer
    consumer_thread: threading.Thread
    watcher: HealthWatcher
    mongo_client: pymongo.MongoClient[dict[str, Any]]
    sender: SmtpSender
    handler: NotificationHandler

    @property
    def grpc_port(self) -> int:
        return self.grpc.port

    def stop(self, grace_s: float = DRAIN_S) -> bool:
        """Drains as described in the module docstring; True if nothing was left in flight."""
        self.watcher.stop()
        self.grpc.set_serving(False)
        self.sender.stopping.set()
        drained = self.consumer.stop(timeout=grace_s)
        self.consumer_thread.join(timeout=grace_s + 5)
        self.grpc.stop(1.0)
        self.mongo_client.close()
        provider = trace.get_tracer_provider()
        if isinstance(provider, TracerProvider):
            provider.force_flush(timeout_millis=2000)  # the last `smtp send` spans
        log.info("notifier_svc stopped", extra={"drained": drained})
        return drained


def serve(
    config: NotifierConfig,
    *,
    retry: RetryPolicy | None = None,
    tls_context: ssl.SSLContext | None = None,
    requeue_backoff_s: tuple[float, float] = (1.0, 30.0),
    health_interval_s: float = 2.0,
) -> NotifierServer:
    """Starts consuming `mp3` and serving health; NOT_SERVING until RabbitMQ and MongoDB answer.

    The keyword arguments are for tests (faster retries and health checks, a test CA);
    production uses the defaults: 3 attempts per delivery 1 s and 2 s apart, requeues 1-30 s
    apart, and the system trust store.
    """
    init_tracing("notifier_svc", config.environ, instrument_pymongo=True)
    client = mongo.connect(config.mongo_uri, app_name="notifier_svc")
    transport = SmtpTransport(
        config.smtp,
        username=config.smtp_username,
        password=config.smtp_password,
        timeout_s=config.smtp_timeout_s,
        ssl_context=tls_context,
    )
    sender = SmtpSender(transport, envelope_from=config.envelope_from, retry=retry)
    handler = NotificationHandler(
        JobStore(mongo.default_database(client)),
        sender,
        MailSettings(sender=config.smtp_from, public_base_url=config.public_base_url),
        lease_s=sender.attempt_bound_s(config.smtp_timeout_s) + LEASE_MARGIN_S,
    )
    consumer = Consumer(
        config.amqp_url,
        QUEUE_MP3,
        handler,
        concurrency=config.concurrency,
        prefetch=config.concurrency,
        requeue_backoff_s=requeue_backoff_s,
    )
    try:
        server = start_grpc_server(
            port=config.common.grpc_port,
            bind_host=config.common.bind_host,
            register=lambda _server: None,
            service_names=[],
            interceptors=traced_server_interceptors(),
            max_workers=4,
        )
    except BaseException:
        client.close()
        raise
    thread = threading.Thread(target=consumer.run, name="consume-mp3", daemon=True)
    thread.start()
    watcher = HealthWatcher(
        server, lambda: consumer.connected and mongo.ping(client), interval_s=health_interval_s
    ).start()
    log.info(
        "notifier_svc listening",
        extra={"port": server.port, "smtp": str(config.smtp), "claimer": handler.claimer},
    )
    return NotifierServer(
        grpc=server,
        consumer=consumer,
        consumer_thread=thread,
        watcher=watcher,
        mongo_client=client,
        sender=sender,
        handler=handler,
    )
