"""Wiring for converter_svc: `serve()` starts the consumer, the worker pool and gRPC health."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from converter_svc.config import ConverterConfig
from converter_svc.handler import ConversionHandler
from converter_svc.pool import ConversionPool
from meshkit.amqp import QUEUE_VIDEO, Consumer, Publisher
from meshkit.blobstore import BlobStore
from meshkit.grpc_server import GrpcServer, start_grpc_server
from meshkit.health import HealthWatcher
from meshkit.jobs import JobStore
from meshkit.mongo import connect, default_database, ping
from observability.grpc import traced_server_interceptors
from observability.tracing import init_tracing

log = logging.getLogger(__name__)


@dataclass
class ConverterServer:
    grpc: GrpcServer
    consumer: Consumer
    pool: ConversionPool
    publisher: Publisher
    watcher: HealthWatcher
    consumer_thread: threading.Thread
    drain_timeout_s: float

    @property
    def port(self) -> int:
        return self.grpc.port

    def stop(self, drain_timeout_s: float | None = None) -> None:
        """NOT_SERVING, finish (or hand back) conversions in hand, then close everything."""
        self.watcher.stop()
        self.grpc.set_serving(False)
        timeout = self.drain_timeout_s if drain_timeout_s is None else drain_timeout_s
        self.consumer.stop(timeout)
        self.consumer_thread.join(timeout + 5)
        self.pool.shutdown()
        self.publisher.close()
        self.grpc.stop(1)


def serve(config: ConverterConfig) -> ConverterServer:
    init_tracing("converter_svc", config.environ, instrument_pymongo=True)
    client = connect(config.mongo_uri, app_name="converter")
    db = default_database(client)
    jobs, blobs = JobStore(db), BlobStore(db)
    publisher = Publisher(
        config.amqp_url, app_id="converter_svc", declare=True, delivery_limit=config.delivery_limit
    )
    pool = ConversionPool(
        mongo_uri=config.mongo_uri, workers=config.concurrency, environ=config.environ
    )
    handler = ConversionHandler(
        jobs=jobs,
        blobs=blobs,
        publisher=publisher,
        pool=pool,
        max_duration_s=config.max_duration_s,
        # LAME runs segments in parallel threads: share the cores among the conversions.
        encoder_threads=max(1, (os.cpu_count() or 1) // config.concurrency),
    )
    consumer = Consumer(
        config.amqp_url,
        QUEUE_VIDEO,
        handler,
        concurrency=config.concurrency,
        prefetch=config.concurrency,
        delivery_limit=config.delivery_limit,
    )
    thread = threading.Thread(target=consumer.run, name="video-consumer", daemon=True)
    thread.start()
    server = start_grpc_server(
        port=config.common.grpc_port,
        bind_host=config.common.bind_host,
        register=lambda _server: None,
        service_names=[],
        interceptors=traced_server_interceptors(),
    )
    watcher = HealthWatcher(server, lambda: consumer.connected and ping(client)).start()
    log.info("converter_svc listening", extra={"port": server.port, "workers": config.concurrency})
    return ConverterServer(
        grpc=server,
        consumer=consumer,
        pool=pool,
        publisher=publisher,
        watcher=watcher,
        consumer_thread=thread,
        drain_timeout_s=config.drain_timeout_s,
    )
