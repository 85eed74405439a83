"""RabbitMQ for the mesh: topology, a confirming publisher, a threaded consumer (pika).

Topology (`declare_topology`): durable quorum queues `video` and `mp3`, each with a delivery
limit and at-least-once dead-lettering through the `mp3mesh.dlx` direct exchange into
`video.dead` / `mp3.dead`. A quorum queue counts deliveries itself (`x-delivery-count`), so a
message that keeps failing — or keeps crashing its consumer — is moved aside by the broker after
`delivery_limit` redeliveries instead of looping forever. With RabbitMQ 3.10 a limit of N allows
N+1 deliveries: counts 0..N, then the message is dead-lettered.

Messages are protobufs: `content_type=application/x-protobuf`, `type=<full message name>`,
`message_id=<job id>`, persistent, W3C trace context in the headers.

Threading model of `Consumer`: pika's `BlockingConnection` is not thread-safe, so one thread
(the one calling `run()`) owns the connection and keeps calling `process_data_events`, which
also keeps heartbeats flowing while handlers work for minutes. Handlers run in a thread pool;
their outcome is marshalled back to the connection thread with `add_callback_threadsafe`, the
only thread-safe pika call. CPU-heavy handlers may hand their work to a process pool and wait
for it from the handler thread: the consumer does not care how the handler spends its time.
"""

from __future__ import annotations

import enum
import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, TypeAlias
from urllib.parse import parse_qs, urlsplit

import pika
import pika.exceptions
from google.protobuf.message import DecodeError, Message
from mp3mesh.jobs.v1 import jobs_pb2
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

log = logging.getLogger(__name__)

QUEUE_VIDEO = "video"
QUEUE_MP3 = "mp3"
QUEUES = (QUEUE_VIDEO, QUEUE_MP3)
DLX_EXCHANGE = "mp3mesh.dlx"
DEFAULT_DELIVERY_LIMIT = 5
CONTENT_TYPE = "application/x-protobuf"

MESSAGE_TYPES: Mapping[str, type[Message]] = MappingProxyType(
    {
        jobs_pb2.ConversionRequested.DESCRIPTOR.full_name: jobs_pb2.ConversionRequested,
        jobs_pb2.ConversionFinished.DESCRIPTOR.full_name: jobs_pb2.ConversionFinished,
    }
)

# Errors after which the connection (or channel) is unusable and a fresh one may succeed.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.ConnectionWrongStateError,
    pika.exceptions.ChannelWrongStateError,
    OSError,
)


def dead_letter_queue(queue: str) -> str:
    return f"{queue}.dead"


def queue_arguments(queue: str, delivery_limit: int) -> dict[str, Any]:
    """Arguments of a work queue: quorum, delivery limit, at-least-once dead-lettering."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": DLX_EXCHANGE,
        "x-dead-letter-routing-key": queue,
        # at-least-once: the message leaves the queue only once the DLQ has it (3.10+);
        # the broker requires reject-publish overflow for it.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


class TopologyError(Exception):
    """The broker refused a declaration (usually: the queue exists with other arguments)."""


_CHECK_ERRORS: tuple[type[BaseException], ...] = (*_CONNECTION_ERRORS, TopologyError)


def declare_topology(
    channel: BlockingChannel,
    *,
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
    queues: tuple[str, ...] = QUEUES,
) -> None:
    """Declares the DLX, the dead-letter queues and the work queues; idempotent.

    A work queue that already exists with other arguments (another service declared it with
    another `delivery_limit`: arguments are fixed at creation) is used as it is, with a
    warning: the first declarer's shape wins, and every service keeps working. Changing the
    limit of an existing queue takes a policy, or deleting and redeclaring the queue.
    Declarations run on throwaway channels, so a refusal never closes the caller's channel.
    """
    connection = channel.connection
    try:
        with _throwaway_channel(connection) as probe:
            probe.exchange_declare(DLX_EXCHANGE, exchange_type="direct", durable=True)
            for queue in queues:
                dead = dead_letter_queue(queue)
                probe.queue_declare(dead, durable=True, arguments={"x-queue-type": "quorum"})
                probe.queue_bind(dead, DLX_EXCHANGE, routing_key=queue)
        for queue in queues:
            _declare_work_queue(connection, queue, delivery_limit)
    except pika.exceptions.ChannelClosedByBroker as exc:
        raise TopologyError(f"declaring the queues failed: {exc.reply_text}") from exc


PRECONDITION_FAILED = 406


def _declare_work_queue(connection: BlockingConnection, queue: str, delivery_limit: int) -> None:
    try:
        with _throwaway_channel(connection) as probe:
            probe.queue_declare(
                queue, durable=True, arguments=queue_arguments(queue, delivery_limit)
            )
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != PRECONDITION_FAILED:
            raise
        with _throwaway_channel(connection) as probe:
            probe.queue_declare(queue, passive=True)  # it exists: use it as it is
        log.warning(
            "queue %s exists with other arguments (%s); using it as it is", queue, exc.reply_text
        )


@contextmanager
def _throwaway_channel(connection: BlockingConnection) -> Iterator[BlockingChannel]:
    probe = connection.channel()
    try:
        yield probe
    finally:
        if probe.is_open:
            probe.close()


def _parameters(
    amqp_url: str, *, heartbeat_s: float, name: str, blocked_timeout_s: float | None = None
) -> pika.URLParameters:
    """URL parameters with fail-fast defaults; options given in the URL's query win.

    `name` labels the connection in the management UI and `rabbitmqctl list_connections`.
    """
    params = pika.URLParameters(amqp_url)
    given = set(parse_qs(urlsplit(amqp_url).query))
    if "heartbeat" not in given:
        params.heartbeat = max(1, round(heartbeat_s))
    if "connection_attempts" not in given:
        params.connection_attempts = 1
    if "socket_timeout" not in given:
        params.socket_timeout = 5
    if "blocked_connection_timeout" not in given and blocked_timeout_s is not None:
        # a publisher blocked by a broker alarm fails instead of hanging its caller; consumers
        # are left alone (the broker blocks only publishing connections)
        params.blocked_connection_timeout = blocked_timeout_s
    if "client_properties" not in given:
        params.client_properties = {"connection_name": name}
    return params


def _backoff(attempt: int, base_s: float, cap_s: float) -> float:
    """Exponential backoff, capped, with jitter so replicas do not reconnect in lockstep."""
    ceiling = min(cap_s, base_s * float(2 ** min(attempt, 30)))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography


def _text_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """String-valued headers (what the W3C propagator reads); pika may hand out bytes."""
    carrier: dict[str, str] = {}
    for key, value in (headers or {}).items():
        if isinstance(value, bytes):
            try:
                carrier[key] = value.decode()
            except UnicodeDecodeError:
                continue
        elif isinstance(value, str):
            carrier[key] = value
    return carrier


# ---- publishing ---------------------------------------------------------------------------


class PublishError(Exception):
    """The message is not known to be on the queue (broker down, unroutable, nacked)."""


class Publisher:
    """Publishes protobuf messages with publisher confirms; thread-safe; connects lazily.

    A publish returns only once the broker confirmed the message is on the (persistent)
    queue; anything else raises `PublishError`, so the caller can keep its outbox flag.
    With `declare=True` the mesh's topology is declared on every new connection, so a
    publisher never depends on a consumer having started first.
    A dead connection is replaced on the next publish; one retry on a fresh connection covers
    a connection that died while idle (a retry after an unconfirmed send may duplicate the
    message: consumers deduplicate by job id).
    """

    def __init__(
        self,
        amqp_url: str,
        *,
        app_id: str,
        heartbeat_s: float = 30,
        declare: bool = False,
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
    ) -> None:
        self._params = _parameters(
            amqp_url, heartbeat_s=heartbeat_s, name=f"{app_id} publisher", blocked_timeout_s=30
        )
        self._app_id = app_id
        self._declare = declare
        self._delivery_limit = delivery_limit
        self._lock = threading.Lock()
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._tracer = trace.get_tracer(__name__)

    @property
    def connected(self) -> bool:
        connection = self._connection
        return connection is not None and connection.is_open

    def _ensure_channel(self) -> BlockingChannel:
        if self._channel is not None and self._channel.is_open and self.connected:
            return self._channel
        self._discard()
        self._connection = pika.BlockingConnection(self._params)
        self._channel = self._connection.channel()
        if self._declare:
            declare_topology(self._channel, delivery_limit=self._delivery_limit)
        self._channel.confirm_delivery()
        return self._channel

    def _discard(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:
                log.debug("closing a broken publisher connection failed", exc_info=True)

    def check(self) -> bool:
        """True if the broker is reachable (connects if needed); for readiness probes."""
        with self._lock:
            try:
                self._ensure_channel()
                assert self._connection is not None
                self._connection.process_data_events(time_limit=0)
            except _CHECK_ERRORS as exc:
                log.debug("broker check failed: %s", exc)
                self._discard()
                return False
            return True

    def publish(
        self,
        queue: str,
        message: Message,
        *,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Puts `message` on `queue` (default exchange) and waits for the broker's confirm.

        `message_id` defaults to the message's `job_id`. Raises `PublishError`.
        """
        msg_id = message_id if message_id is not None else str(getattr(message, "job_id", ""))
        type_name = message.DESCRIPTOR.full_name
        with self._tracer.start_as_current_span(
            f"publish {queue}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "publish",
                "messaging.destination.name": queue,
                "messaging.message.id": msg_id,
                "messaging.rabbitmq.destination.routing_key": queue,
                "messaging.message.type": type_name,
            },
        ) as span:
            carrier: dict[str, Any] = dict(headers or {})
            propagate.inject(carrier)
            properties = pika.BasicProperties(
                content_type=CONTENT_TYPE,
                delivery_mode=pika.DeliveryMode.Persistent,
                type=type_name,
                message_id=msg_id,
                app_id=self._app_id,
                timestamp=int(time.time()),
                headers=carrier,
            )
            body = message.SerializeToString()
            try:
                self._publish_with_retry(queue, body, properties)
            except PublishError as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise

    def _publish_with_retry(
        self, queue: str, body: bytes, properties: pika.BasicProperties
    ) -> None:
        with self._lock:
            for attempt in (1, 2):
                try:
                    channel = self._ensure_channel()
                    channel.basic_publish(
                        exchange="",
                        routing_key=queue,
                        body=body,
                        properties=properties,
                        mandatory=True,
                    )
                    return
                except pika.exceptions.UnroutableError as exc:
                    raise PublishError(f"no queue {queue!r} to route the message to") from exc
                except pika.exceptions.NackError as exc:
                    raise PublishError(f"the broker refused the message for {queue!r}") from exc
                except TopologyError as exc:
                    self._discard()
                    raise PublishError(str(exc)) from exc
                except _CONNECTION_ERRORS as exc:
                    self._discard()
                    if attempt == 2:
                        raise PublishError(f"broker unavailable: {exc!r}") from exc
                    log.info("publish to %s failed (%r); retrying on a new connection", queue, exc)

    def close(self) -> None:
        with self._lock:
            self._discard()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# ---- consuming ----------------------------------------------------------------------------


class Outcome(enum.Enum):
    """What the consumer does with a message once its handler returned."""

    ACK = "ack"  # done (side effects durable): remove it
    REQUEUE = "requeue"  # transient failure: back on the queue after a backoff
    REJECT = "reject"  # will never succeed: dead-letter it now


@dataclass(frozen=True)
class DeliveryInfo:
    """What a handler may want to know about a delivery besides the message."""

    queue: str
    delivery_tag: int
    message_id: str
    message_type: str
    redelivered: bool
    delivery_count: int  # 0 on the first delivery (x-delivery-count of quorum queues)
    delivery_limit: int | None
    headers: Mapping[str, Any]
    # Set when this delivery's ack can no longer reach the broker (its channel is gone, or
    # stop() gave up waiting): the message will be redelivered, so long work may stop early.
    abandoned: threading.Event = field(compare=False)

    @property
    def is_last_attempt(self) -> bool:
        """True when a REQUEUE now would dead-letter the message instead of retrying it."""
        return self.delivery_limit is not None and self.delivery_count >= self.delivery_limit


Handler: TypeAlias = Callable[[Any, DeliveryInfo], Outcome]


class UndecodableMessage(Exception):
    """The delivery is not a protobuf message of a type this consumer knows."""


def decode_message(
    properties: pika.BasicProperties,
    body: bytes,
    message_types: Mapping[str, type[Message]] = MESSAGE_TYPES,
) -> Message:
    """The protobuf named by the `type` property; raises `UndecodableMessage`."""
    if properties.content_type not in (None, CONTENT_TYPE):
        raise UndecodableMessage(f"content type {properties.content_type!r}")
    cls = message_types.get(properties.type or "")
    if cls is None:
        raise UndecodableMessage(f"unknown message type {properties.type!r}")
    message = cls()
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise UndecodableMessage(f"not a valid {properties.type}: {exc}") from exc
    if "job_id" in cls.DESCRIPTOR.fields_by_name and not getattr(message, "job_id", ""):
        raise UndecodableMessage(f"{properties.type} without a job_id")
    return message


@dataclass
class _Session:
    """One connection + channel; deliveries are only ever settled on the session they came on."""

    connection: BlockingConnection
    channel: BlockingChannel
    abandoned: threading.Event = field(default_factory=threading.Event)
    inflight: set[int] = field(default_factory=set)


class Consumer:
    """Consumes one queue with manual acks, `concurrency` handlers at a time; reconnects.

    `run()` blocks until `stop()`; call `stop()` from another thread (e.g. a SIGTERM handler).
    The handler returns an `Outcome`; an exception counts as REQUEUE. Undecodable messages
    are rejected (dead-lettered) without reaching the handler.
    """

    def __init__(
        self,
        amqp_url: str,
        queue: str,
        handler: Handler,
        *,
        concurrency: int = 1,
        prefetch: int | None = None,
        heartbeat_s: float = 30,
        declare: bool = True,
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
        message_types: Mapping[str, type[Message]] = MESSAGE_TYPES,
        requeue_backoff_s: tuple[float, float] = (1.0, 30.0),
        reconnect_backoff_s: tuple[float, float] = (0.5, 30.0),
        on_connection_change: Callable[[bool], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self._params = _parameters(amqp_url, heartbeat_s=heartbeat_s, name=f"consumer {queue}")
        self._queue = queue
        self._handler = handler
        self._concurrency = concurrency
        self._prefetch = prefetch if prefetch is not None else concurrency
        self._declare = declare
        self._delivery_limit = delivery_limit
        self._message_types = message_types
        self._requeue_backoff = requeue_backoff_s
        self._reconnect_backoff = reconnect_backoff_s
        self._on_connection_change = on_connection_change
        self._tracer = trace.get_tracer(__name__)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._drain_deadline = float("inf")
        self._connected = False
        self._busy = 0
        self._sessions = 0
        self._clean_stop: bool | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def queue(self) -> str:
        return self._queue

    @property
    def connected(self) -> bool:
        """True while consuming on an open channel (report SERVING only then); False from the
        moment `stop()` cancels the subscription."""
        return self._connected

    @property
    def sessions(self) -> int:
        """How many connections were established so far (reconnects = sessions - 1)."""
        return self._sessions

    @property
    def busy(self) -> int:
        """Handlers running right now."""
        return self._busy

    def _set_connected(self, value: bool) -> None:
        if self._connected == value:
            return
        self._connected = value
        if self._on_connection_change is not None:
            try:
                self._on_connection_change(value)
            except Exception:
                log.exception("on_connection_change callback failed")

    # -- lifecycle --

    def run(self) -> None:
        """Consumes until `stop()`: connects, consumes, reconnects with backoff on failure."""
        self._executor = ThreadPoolExecutor(
            max_workers=self._concurrency, thread_name_prefix=f"consume-{self._queue}"
        )
        attempt = 0
        try:
            while not self._stopping.is_set():
                sessions_before = self._sessions
                try:
                    self._run_session()
                except TopologyError as exc:
                    log.error("consumer of %s cannot declare its queues: %s", self._queue, exc)
                except Exception as exc:
                    log.warning("consumer of %s lost its connection: %r", self._queue, exc)
                if self._stopping.is_set():
                    break
                # back off harder only while connecting keeps failing
                attempt = 0 if self._sessions > sessions_before else attempt + 1
                delay = _backoff(attempt, *self._reconnect_backoff)
                log.info("consumer of %s reconnecting in %.1fs", self._queue, delay)
                self._stopping.wait(delay)
        finally:
            if self._clean_stop is None:  # stopped while disconnected
                self._clean_stop = self._busy == 0
            self._set_connected(False)
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._stopped.set()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stops taking messages, lets running handlers finish and acks them, then closes.

        Handlers still running after `timeout` are abandoned: their messages go back to the
        queue when the channel closes. Returns True if everything finished in time.
        """
        self._drain_deadline = time.monotonic() + timeout
        self._stopping.set()
        finished = self._stopped.wait(timeout + 5)
        return finished and bool(self._clean_stop)

    # -- connection thread --

    def _run_session(self) -> None:
        connection = pika.BlockingConnection(self._params)
        session: _Session | None = None
        try:
            channel = connection.channel()
            if self._declare:
                # all the mesh's queues, not just ours: a consumer usually publishes onward
                queues = QUEUES if self._queue in QUEUES else (*QUEUES, self._queue)
                declare_topology(channel, delivery_limit=self._delivery_limit, queues=queues)
            channel.basic_qos(prefetch_count=self._prefetch)
            session = _Session(connection, channel)
            tag = channel.basic_consume(
                self._queue,
                on_message_callback=functools.partial(self._on_message, session),
                auto_ack=False,
            )
            self._sessions += 1
            self._set_connected(True)
            log.info("consuming %s (prefetch %d)", self._queue, self._prefetch)
            cancelled = False
            while True:
                if self._stopping.is_set():
                    if not cancelled:
                        channel.basic_cancel(tag)
                        cancelled = True
                        self._set_connected(False)  # draining: no longer taking work
                    if not session.inflight:
                        self._clean_stop = True
                        break
                    if time.monotonic() >= self._drain_deadline:
                        self._clean_stop = False
                        break
                elif not channel.is_open or not channel.consumer_tags:
                    raise pika.exceptions.ChannelClosed(0, "channel closed or consumer cancelled")
                connection.process_data_events(time_limit=0.2)
        finally:
            self._set_connected(False)
            if session is not None:
                session.abandoned.set()
                if session.inflight:
                    log.warning(
                        "%d deliveries of %s left unacked; the broker will redeliver them",
                        len(session.inflight),
                        self._queue,
                    )
            if connection.is_open:
                try:
                    connection.close()
                except Exception:
                    log.debug("closing the consumer connection failed", exc_info=True)

    def _on_message(
        self,
        session: _Session,
        channel: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        tag = method.delivery_tag
        if self._stopping.is_set():
            channel.basic_nack(tag, requeue=True)
            return
        try:
            message = decode_message(properties, body, self._message_types)
        except UndecodableMessage as exc:
            log.error("rejecting message %s on %s: %s", properties.message_id, self._queue, exc)
            channel.basic_reject(tag, requeue=False)
            return
        headers = dict(properties.headers or {})
        info = DeliveryInfo(
            queue=self._queue,
            delivery_tag=tag,
            message_id=properties.message_id or "",
            message_type=properties.type or "",
            redelivered=bool(method.redelivered),
            delivery_count=int(headers.get("x-delivery-count") or 0),
            delivery_limit=self._delivery_limit,
            headers=MappingProxyType(headers),
            abandoned=session.abandoned,
        )
        with self._lock:
            session.inflight.add(tag)
            self._busy += 1
        assert self._executor is not None
        self._executor.submit(self._work, session, message, info)

    def _settle(self, session: _Session, tag: int, outcome: Outcome) -> None:
        session.inflight.discard(tag)
        channel = session.channel
        if session.abandoned.is_set() or not channel.is_open:
            return
        if outcome is Outcome.ACK:
            channel.basic_ack(tag)
        elif outcome is Outcome.REQUEUE:
            channel.basic_nack(tag, requeue=True)
        else:
            channel.basic_reject(tag, requeue=False)

    # -- worker threads --

    def _work(self, session: _Session, message: Message, info: DeliveryInfo) -> None:
        try:
            outcome = self._handle(message, info)
            if outcome is Outcome.REQUEUE:
                self._pause(_backoff(info.delivery_count, *self._requeue_backoff), session)
            if session.abandoned.is_set():
                return
            try:
                session.connection.add_callback_threadsafe(
                    functools.partial(self._settle, session, info.delivery_tag, outcome)
                )
            except _CONNECTION_ERRORS as exc:
                log.info("cannot settle delivery %d: %r", info.delivery_tag, exc)
        finally:
            with self._lock:
                self._busy -= 1

    def _pause(self, delay: float, session: _Session) -> None:
        """Sleeps before a requeue (no hot retry loop), cut short by stop() or a lost channel."""
        deadline = time.monotonic() + delay
        while not self._stopping.is_set() and not session.abandoned.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            session.abandoned.wait(min(remaining, 0.2))

    def _handle(self, message: Message, info: DeliveryInfo) -> Outcome:
        context = propagate.extract(_text_headers(info.headers))
        with self._tracer.start_as_current_span(
            f"process {self._queue}",
            context=context,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "process",
                "messaging.destination.name": self._queue,
                "messaging.message.id": info.message_id,
                "messaging.message.type": info.message_type,
                "messaging.rabbitmq.message.delivery_count": info.delivery_count,
            },
        ) as span:
            try:
                outcome = self._handler(message, info)
            except Exception as exc:
                log.exception("handler failed for %s on %s", info.message_id, self._queue)
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, repr(exc)))
                outcome = Outcome.REQUEUE
            if not isinstance(outcome, Outcome):
                log.error("handler returned %r for %s; requeueing", outcome, info.message_id)
                outcome = Outcome.REQUEUE
            span.set_attribute("messaging.mp3mesh.outcome", outcome.name)
            return outcome


@contextmanager
def open_channel(
    amqp_url: str, *, heartbeat_s: float = 30, name: str = "mp3mesh"
) -> Iterator[BlockingChannel]:
    """A short-lived channel (e.g. to declare the topology at start-up or in tests)."""
    connection = pika.BlockingConnection(_parameters(amqp_url, heartbeat_s=heartbeat_s, name=name))
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()
