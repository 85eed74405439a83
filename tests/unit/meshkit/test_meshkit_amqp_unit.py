"""AMQP pieces that need no broker: decoding, arguments, backoff, handler outcomes, settling."""

from __future__ import annotations

import threading
import types
from typing import Any

import pika
import pytest
from mp3mesh.jobs.v1 import jobs_pb2
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from meshkit import amqp
from meshkit.amqp import Consumer, DeliveryInfo, Outcome, UndecodableMessage

REQUESTED = "mp3mesh.jobs.v1.ConversionRequested"
NOWHERE = "amqp://guest:guest@127.0.0.1:1/x"  # never connected to


def props(**kwargs: Any) -> pika.BasicProperties:
    return pika.BasicProperties(**kwargs)


def info(**kwargs: Any) -> DeliveryInfo:
    defaults: dict[str, Any] = {
        "queue": "video", "delivery_tag": 7, "message_id": "job-1", "message_type": REQUESTED,
        "redelivered": False, "delivery_count": 0, "delivery_limit": 5, "headers": {},
        "abandoned": threading.Event(),
    }  # fmt: skip
    return DeliveryInfo(**{**defaults, **kwargs})


def test_decode_message_by_type_property():
    body = jobs_pb2.ConversionRequested(job_id="job-1", bitrate_kbps=192).SerializeToString()
    message = amqp.decode_message(props(type=REQUESTED, content_type=amqp.CONTENT_TYPE), body)
    assert isinstance(message, jobs_pb2.ConversionRequested) and message.job_id == "job-1"
    finished = jobs_pb2.ConversionFinished(job_id="job-2").SerializeToString()
    assert amqp.decode_message(props(type="mp3mesh.jobs.v1.ConversionFinished"), finished).job_id


@pytest.mark.parametrize(
    ("properties", "body", "reason"),
    [
        ({"type": "x.Unknown"}, b"", "unknown message type"),
        ({}, b"", "unknown message type"),
        ({"type": REQUESTED, "content_type": "application/json"}, b"{}", "content type"),
        ({"type": REQUESTED}, b"\xff\xff\xff", "not a valid"),
        ({"type": REQUESTED}, b"", "without a job_id"),
    ],
)
def test_undecodable_messages(properties, body, reason):
    with pytest.raises(UndecodableMessage, match=reason):
        amqp.decode_message(props(**properties), body)


def test_queue_arguments_make_a_dead_lettering_quorum_queue():
    args = amqp.queue_arguments("mp3", 3)
    assert args["x-queue-type"] == "quorum"
    assert args["x-delivery-limit"] == 3
    assert args["x-dead-letter-exchange"] == amqp.DLX_EXCHANGE
    assert args["x-dead-letter-routing-key"] == "mp3"
    assert amqp.dead_letter_queue("mp3") == "mp3.dead"


def test_backoff_grows_is_capped_and_jittered():
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (3, 4.0), (10, 30.0), (500, 30.0)]:
        delays = {amqp._backoff(attempt, 0.5, 30.0) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1


def test_url_options_win_over_defaults():
    params = amqp._parameters(
        "amqp://u:p@h:5672/v?heartbeat=7&socket_timeout=2", heartbeat_s=30, name="n"
    )
    assert params.heartbeat == 7 and params.socket_timeout == 2
    assert params.connection_attempts == 1 and params.virtual_host == "v"
    defaults = amqp._parameters("amqp://u:p@h:5672/v", heartbeat_s=2.4, name="n")
    assert defaults.heartbeat == 2
    assert defaults.client_properties["connection_name"] == "n"


def test_text_headers_drop_what_a_propagator_cannot_read():
    headers = {"traceparent": b"00-ab", "tracestate": "k=v", "n": 5, "bin": b"\xff"}
    assert amqp._text_headers(headers) == {"traceparent": "00-ab", "tracestate": "k=v"}
    assert amqp._text_headers(None) == {}


def test_last_attempt_follows_the_delivery_limit():
    assert not info(delivery_count=4).is_last_attempt
    assert info(delivery_count=5).is_last_attempt
    assert not info(delivery_count=50, delivery_limit=None).is_last_attempt


@pytest.fixture(scope="module")
def spans():
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (lambda m, i: Outcome.ACK, Outcome.ACK),
        (lambda m, i: Outcome.REJECT, Outcome.REJECT),
        (lambda m, i: 1 / 0, Outcome.REQUEUE),  # a crash is a transient failure
        (lambda m, i: None, Outcome.REQUEUE),  # so is a handler that forgot to answer
    ],
)
def test_handler_outcomes_and_consumer_span(spans, behaviour, expected):
    spans.clear()
    consumer = Consumer(NOWHERE, "video", behaviour)
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    outcome = consumer._handle(jobs_pb2.ConversionRequested(job_id="j"), info(
        headers={"traceparent": parent}
    ))  # fmt: skip
    assert outcome is expected
    [span] = spans.get_finished_spans()
    assert span.name == "process video" and span.kind == trace.SpanKind.CONSUMER
    assert format(span.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    assert span.attributes["messaging.mp3mesh.outcome"] == expected.name


class FakeChannel:
    def __init__(self) -> None:
        self.is_open = True
        self.calls: list[tuple[str, int, bool | None]] = []

    def basic_ack(self, tag: int) -> None:
        self.calls.append(("ack", tag, None))

    def basic_nack(self, tag: int, requeue: bool) -> None:
        self.calls.append(("nack", tag, requeue))

    def basic_reject(self, tag: int, requeue: bool) -> None:
        self.calls.append(("reject", tag, requeue))


class FakeConnection:
    """Runs the threadsafe callback at once, as the connection thread would later."""

    def __init__(self) -> None:
        self.callbacks = 0

    def add_callback_threadsafe(self, callback: Any) -> None:
        self.callbacks += 1
        callback()


@pytest.mark.parametrize(
    ("outcome", "call"),
    [
        (Outcome.ACK, ("ack", 7, None)),
        (Outcome.REQUEUE, ("nack", 7, True)),
        (Outcome.REJECT, ("reject", 7, False)),
    ],
)
def test_outcomes_are_settled_on_the_delivery_channel(outcome, call):
    consumer = Consumer(NOWHERE, "video", lambda m, i: outcome, requeue_backoff_s=(0.01, 0.01))
    channel = FakeChannel()
    session = amqp._Session(FakeConnection(), channel)
    session.inflight.add(7)
    consumer._busy = 1
    consumer._work(session, jobs_pb2.ConversionRequested(job_id="j"), info())
    assert channel.calls == [call]
    assert session.inflight == set() and consumer.busy == 0


def test_an_abandoned_delivery_is_never_settled():
    consumer = Consumer(NOWHERE, "video", lambda m, i: Outcome.ACK)
    channel, connection = FakeChannel(), FakeConnection()
    session = amqp._Session(connection, channel)
    session.abandoned.set()  # its channel died while the handler ran
    consumer._busy = 1
    consumer._work(session, jobs_pb2.ConversionRequested(job_id="j"), info())
    assert channel.calls == [] and connection.callbacks == 0
    assert consumer.busy == 0


def test_requeue_waits_for_the_backoff_but_not_past_stop():
    consumer = Consumer(
        NOWHERE, "video", lambda m, i: Outcome.REQUEUE,
        requeue_backoff_s=(60.0, 60.0),
    )  # fmt: skip
    session = amqp._Session(FakeConnection(), FakeChannel())
    consumer._busy = 1
    worker = threading.Thread(
        target=consumer._work, args=(session, jobs_pb2.ConversionRequested(job_id="j"), info())
    )
    worker.start()
    worker.join(0.5)
    assert worker.is_alive()  # still backing off
    consumer._stopping.set()
    worker.join(2)
    assert not worker.is_alive()
    assert session.channel.calls == [("nack", 7, True)]


def test_stop_before_run_returns_promptly():
    consumer = Consumer(NOWHERE, "video", lambda m, i: Outcome.ACK)
    consumer._stopping.set()
    consumer.run()  # returns at once: stop was requested first
    assert consumer.stop(timeout=0.1) is True
    assert not consumer.connected


def test_invalid_concurrency():
    with pytest.raises(ValueError, match="concurrency"):
        Consumer(NOWHERE, "video", lambda m, i: Outcome.ACK, concurrency=0)


def test_message_type_registry_is_read_only():
    assert isinstance(amqp.MESSAGE_TYPES, types.MappingProxyType)
    assert amqp.MESSAGE_TYPES[REQUESTED] is jobs_pb2.ConversionRequested
