"""Topology, Publisher and Consumer against the real RabbitMQ, in the session's own vhost."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pika
import pytest
from mp3mesh.jobs.v1 import jobs_pb2
from mp3mesh.storage.v1 import storage_pb2
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from meshkit import amqp
from meshkit.amqp import Consumer, DeliveryInfo, Outcome, Publisher, PublishError
from tests.fixtures.processes import free_port, wait_until
from tests.fixtures.rabbit import (
    close_connections,
    drain_queue,
    queue_depth,
    rabbitmqctl,
    vhost_of,
    wait_for_depth,
)

pytestmark = pytest.mark.integration

FAST = {"requeue_backoff_s": (0.05, 0.1), "reconnect_backoff_s": (0.1, 0.5)}


def request(job_id: str) -> jobs_pb2.ConversionRequested:
    return jobs_pb2.ConversionRequested(
        job_id=job_id,
        owner_id="user-1",
        owner_email="user-1@example.com",
        video=storage_pb2.BlobRef(bucket=storage_pb2.BUCKET_VIDEOS, file_id="ab" * 12),
        bitrate_kbps=192,
        filename="clip.mp4",
    )


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


@pytest.fixture
def topology(rabbit_url: str) -> str:
    with amqp.open_channel(rabbit_url) as channel:
        amqp.declare_topology(channel)
    return rabbit_url


@pytest.fixture
def publisher(rabbit_url: str) -> Iterator[Publisher]:
    with Publisher(rabbit_url, app_id="tests") as pub:
        yield pub


class Recorder:
    """A handler that records what it saw and answers from a script of outcomes."""

    def __init__(self, *outcomes: Outcome | Exception, hold: threading.Event | None = None):
        self.outcomes = list(outcomes)
        self.calls: list[tuple[jobs_pb2.ConversionRequested, DeliveryInfo]] = []
        self.started = threading.Event()
        self.hold = hold
        self.lock = threading.Lock()

    def __call__(self, message: jobs_pb2.ConversionRequested, info: DeliveryInfo) -> Outcome:
        with self.lock:
            self.calls.append((message, info))
            first = len(self.calls) == 1
            outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        self.started.set()
        if first and self.hold is not None:
            self.hold.wait(20)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@contextmanager
def running(consumer: Consumer) -> Iterator[Consumer]:
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: consumer.connected, timeout_s=10, what="the consumer to connect")
        yield consumer
    finally:
        consumer.stop(timeout=5)
        thread.join(10)
        assert not thread.is_alive()


def test_topology_is_idempotent_quorum_and_dead_lettered(rabbit_url):
    with amqp.open_channel(rabbit_url) as channel:
        amqp.declare_topology(channel)
        amqp.declare_topology(channel)  # same arguments: fine
    listing = rabbitmqctl(
        "list_queues", "-p", vhost_of(rabbit_url), "name", "type", "arguments",
        "--no-table-headers",
    )  # fmt: skip
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in listing.splitlines()}
    assert set(rows) == {"video", "mp3", "video.dead", "mp3.dead"}
    assert all(kind == "quorum" for kind, _ in rows.values())
    for queue in ("video", "mp3"):
        arguments = rows[queue][1]
        assert '"x-delivery-limit",5' in arguments
        assert '"x-dead-letter-exchange","mp3mesh.dlx"' in arguments
        assert f'"x-dead-letter-routing-key","{queue}"' in arguments
    # Another service declaring another limit: the existing queue is used as it is, and the
    # caller's channel stays usable.
    with amqp.open_channel(rabbit_url) as channel:
        amqp.declare_topology(channel, delivery_limit=9)
        assert channel.is_open
        assert channel.queue_declare("video", passive=True).method.queue == "video"
    listing = rabbitmqctl("list_queues", "-p", vhost_of(rabbit_url), "name", "arguments",
                          "--no-table-headers")
    video_arguments = next(line for line in listing.splitlines() if line.startswith("video\t"))
    assert '"x-delivery-limit",5' in video_arguments


def test_publish_is_confirmed_with_properties_and_trace_context(topology, publisher, spans):
    spans.clear()
    before = int(time.time())
    publisher.publish("video", request("job-1"))

    [msg] = drain_queue(topology, "video")
    props = msg.properties
    assert props.content_type == "application/x-protobuf"
    assert props.delivery_mode == 2
    assert props.type == "mp3mesh.jobs.v1.ConversionRequested"
    assert props.message_id == "job-1"
    assert props.app_id == "tests"
    assert before <= props.timestamp <= int(time.time()) + 1
    assert jobs_pb2.ConversionRequested.FromString(msg.body) == request("job-1")
    [span] = [s for s in spans.get_finished_spans() if s.name == "publish video"]
    assert span.kind == trace.SpanKind.PRODUCER
    trace_id = format(span.context.trace_id, "032x")
    span_id = format(span.context.span_id, "016x")
    version, header_trace, header_span, flags = msg.headers["traceparent"].split("-")
    assert (version, header_trace, header_span) == ("00", trace_id, span_id)
    assert int(flags, 16) & 1  # sampled


def test_publish_to_a_missing_queue_is_an_error(rabbit_url, publisher):
    assert publisher.check() is True
    with pytest.raises(PublishError, match="no queue 'video'"):
        publisher.publish("video", request("job-1"))
    assert queue_depth(rabbit_url, "video") == 0


def test_a_declaring_publisher_needs_no_consumer_first(rabbit_url):
    with Publisher(rabbit_url, app_id="tests", declare=True) as pub:
        pub.publish("mp3", jobs_pb2.ConversionFinished(job_id="job-1"))
    [msg] = drain_queue(rabbit_url, "mp3")
    assert msg.properties.type == "mp3mesh.jobs.v1.ConversionFinished"


def test_publish_with_the_broker_down_is_an_error():
    down = Publisher(f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F", app_id="tests")
    started = time.monotonic()
    with pytest.raises(PublishError, match="broker unavailable"):
        down.publish("video", request("job-1"))
    assert time.monotonic() - started < 10
    assert not down.check()


def test_publisher_reconnects_after_its_connection_was_closed(topology, publisher):
    publisher.publish("video", request("job-1"))
    assert close_connections(topology) >= 1
    publisher.publish("video", request("job-2"))
    assert [m.properties.message_id for m in drain_queue(topology, "video")] == ["job-1", "job-2"]


def test_consumer_acks_and_continues_the_trace(topology, publisher, spans):
    spans.clear()
    for n in range(3):
        publisher.publish("video", request(f"job-{n}"))
    handler = Recorder(Outcome.ACK)
    consumer = Consumer(topology, "video", handler, concurrency=2, **FAST)
    with running(consumer):
        wait_until(lambda: len(handler.calls) == 3, timeout_s=10, what="3 deliveries")
    assert sorted(m.job_id for m, _ in handler.calls) == ["job-0", "job-1", "job-2"]
    assert all(not i.redelivered and i.delivery_count == 0 for _, i in handler.calls)
    assert all(i.message_type == "mp3mesh.jobs.v1.ConversionRequested" for _, i in handler.calls)
    assert queue_depth(topology, "video") == 0
    assert queue_depth(topology, "video.dead") == 0

    finished = spans.get_finished_spans()
    published = {
        s.attributes["messaging.message.id"]: s for s in finished if s.name == "publish video"
    }
    processed = [s for s in finished if s.name == "process video"]
    assert len(processed) == 3
    for span in processed:
        parent = published[span.attributes["messaging.message.id"]]
        assert span.kind == trace.SpanKind.CONSUMER
        assert span.context.trace_id == parent.context.trace_id
        assert span.parent.span_id == parent.context.span_id


def test_requeue_redelivers_after_a_backoff(topology, publisher):
    publisher.publish("video", request("job-1"))
    handler = Recorder(Outcome.REQUEUE, Outcome.ACK)
    with running(Consumer(topology, "video", handler, **FAST)):
        wait_until(lambda: len(handler.calls) == 2, timeout_s=10, what="the redelivery")
    (_, first), (_, second) = handler.calls
    assert (first.redelivered, first.delivery_count) == (False, 0)
    assert (second.redelivered, second.delivery_count) == (True, 1)
    assert queue_depth(topology, "video") == 0
    assert queue_depth(topology, "video.dead") == 0


def test_reject_dead_letters_at_once(topology, publisher):
    publisher.publish("video", request("job-1"))
    handler = Recorder(Outcome.REJECT)
    with running(Consumer(topology, "video", handler, **FAST)):
        assert wait_for_depth(topology, "video.dead", 1) == 1
    assert len(handler.calls) == 1
    [dead] = drain_queue(topology, "video.dead")
    assert dead.properties.message_id == "job-1"
    assert dead.headers["x-first-death-reason"] == "rejected"


def test_undecodable_messages_dead_letter_without_reaching_the_handler(topology):
    good_type = "mp3mesh.jobs.v1.ConversionRequested"
    bad = [
        (good_type, b"\xff\xff\xff"),  # not a protobuf
        ("mp3mesh.jobs.v1.Nonsense", request("job-2").SerializeToString()),  # unknown type
        (good_type, b""),  # decodes to an empty message without a job id
    ]
    with amqp.open_channel(topology) as channel:
        for n, (kind, body) in enumerate(bad):
            channel.basic_publish(
                "",
                "video",
                body,
                pika.BasicProperties(type=kind, message_id=f"bad-{n}", delivery_mode=2),
            )
    handler = Recorder(Outcome.ACK)
    with running(Consumer(topology, "video", handler, **FAST)):
        assert wait_for_depth(topology, "video.dead", 3) == 3
        time.sleep(0.2)
    assert handler.calls == []
    assert queue_depth(topology, "video") == 0


def test_poison_message_dead_letters_after_the_delivery_limit(rabbit_url, publisher):
    handler = Recorder(RuntimeError("boom"))
    consumer = Consumer(rabbit_url, "video", handler, delivery_limit=2, **FAST)
    with running(consumer):
        publisher.publish("video", request("job-1"))
        assert wait_for_depth(rabbit_url, "video.dead", 1) == 1
        time.sleep(0.3)  # no further deliveries once it is dead-lettered
    counts = [info.delivery_count for _, info in handler.calls]
    assert counts == [0, 1, 2]
    assert [info.is_last_attempt for _, info in handler.calls] == [False, False, True]
    [dead] = drain_queue(rabbit_url, "video.dead")
    assert dead.headers["x-first-death-reason"] == "delivery_limit"
    assert queue_depth(rabbit_url, "video") == 0


def test_long_handler_keeps_the_connection_through_heartbeats(topology, publisher):
    """The handler outlasts two 2 s heartbeat intervals; the connection thread keeps pumping."""

    def slow(message: jobs_pb2.ConversionRequested, info: DeliveryInfo) -> Outcome:
        calls.append(info)
        time.sleep(5.5)
        return Outcome.ACK

    calls: list[DeliveryInfo] = []
    consumer = Consumer(topology, "video", slow, heartbeat_s=2, **FAST)
    with running(consumer):
        timeouts = rabbitmqctl(
            "list_connections", "-p", vhost_of(topology), "timeout", "--no-table-headers"
        ).split()
        assert "2" in timeouts  # the consumer really negotiated 2 s heartbeats
        publisher.publish("video", request("job-1"))
        wait_until(lambda: len(calls) == 1, timeout_s=5, what="the delivery")
        wait_until(lambda: consumer.busy == 0, timeout_s=10, what="the slow handler")
        time.sleep(0.3)
        assert consumer.connected
        assert not calls[0].abandoned.is_set()
    assert consumer.sessions == 1
    assert len(calls) == 1
    assert queue_depth(topology, "video") == 0


def test_consumer_reconnects_when_its_connections_are_closed(topology, publisher):
    release = threading.Event()
    handler = Recorder(Outcome.ACK, hold=release)
    changes: list[bool] = []
    consumer = Consumer(topology, "video", handler, on_connection_change=changes.append, **FAST)
    with running(consumer):
        publisher.publish("video", request("job-1"))
        assert handler.started.wait(10)
        assert close_connections(topology) >= 1  # this vhost only
        wait_until(lambda: consumer.sessions == 2 and consumer.connected, timeout_s=10,
                   what="the reconnect")  # fmt: skip
        release.set()  # the first attempt finishes, but its channel is gone: no ack
        wait_until(lambda: len(handler.calls) == 2, timeout_s=10, what="the redelivery")
        wait_until(lambda: consumer.busy == 0, timeout_s=10, what="the handlers")
    (_, first), (_, second) = handler.calls
    assert first.abandoned.is_set()
    assert second.redelivered and second.message_id == "job-1"
    assert changes[:3] == [True, False, True]
    assert queue_depth(topology, "video") == 0
    assert queue_depth(topology, "video.dead") == 0


def test_stop_lets_a_running_handler_finish_and_acks_it(topology, publisher):
    def handler(message: jobs_pb2.ConversionRequested, info: DeliveryInfo) -> Outcome:
        started.set()
        time.sleep(1)
        finished.set()
        return Outcome.ACK

    started, finished = threading.Event(), threading.Event()
    consumer = Consumer(topology, "video", handler, **FAST)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    publisher.publish("video", request("job-1"))
    assert started.wait(10)
    assert consumer.stop(timeout=5) is True
    thread.join(5)
    assert finished.is_set() and not consumer.connected
    assert queue_depth(topology, "video") == 0


def test_stop_hands_back_what_does_not_finish_in_time(topology, publisher):
    infos: list[DeliveryInfo] = []

    def stuck(message: jobs_pb2.ConversionRequested, info: DeliveryInfo) -> Outcome:
        infos.append(info)
        info.abandoned.wait(10)  # a well-behaved long handler gives up once abandoned
        return Outcome.ACK

    consumer = Consumer(topology, "video", stuck, **FAST)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    publisher.publish("video", request("job-1"))
    wait_until(lambda: len(infos) == 1, timeout_s=10, what="the delivery")
    assert consumer.stop(timeout=0.5) is False
    thread.join(5)
    assert infos[0].abandoned.is_set()
    [back] = drain_queue(topology, "video")  # handed back to the queue, not lost
    assert back.properties.message_id == "job-1" and back.redelivered
