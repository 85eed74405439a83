"""Replaying parked messages against a real RabbitMQ vhost."""

from __future__ import annotations

import pytest
from mp3mesh.jobs.v1 import jobs_pb2

from meshkit.amqp import QUEUE_MP3, Publisher, declare_topology, open_channel
from meshkit.deadletters import list_parked, main, replay
from tests.fixtures.rabbit import drain_queue, queue_depth, wait_for_depth

pytestmark = pytest.mark.integration


def park_one(url: str, job_id: str) -> None:
    with open_channel(url) as channel:
        declare_topology(channel)
    with Publisher(url, app_id="tests") as publisher:
        publisher.publish(QUEUE_MP3, jobs_pb2.ConversionFinished(job_id=job_id))
    with open_channel(url) as channel:
        method, _, _ = channel.basic_get(QUEUE_MP3, auto_ack=False)
        assert method is not None
        channel.basic_nack(method.delivery_tag, requeue=False)  # dead-letter it
    assert wait_for_depth(url, "mp3.dead", 1) == 1


def test_parked_messages_are_listed_with_their_reason_and_stay_parked(rabbit_url: str) -> None:
    park_one(rabbit_url, "job-parked")
    parked = list_parked(rabbit_url, QUEUE_MP3)
    assert [(p.message_id, p.reason) for p in parked] == [("job-parked", "rejected")]
    assert parked[0].message_type == "mp3mesh.jobs.v1.ConversionFinished"
    assert wait_for_depth(rabbit_url, "mp3.dead", 1) == 1


def test_replay_moves_messages_back_unchanged(rabbit_url: str) -> None:
    park_one(rabbit_url, "job-replayed")
    assert replay(rabbit_url, QUEUE_MP3) == 1
    assert queue_depth(rabbit_url, "mp3.dead") == 0
    (message,) = drain_queue(rabbit_url, QUEUE_MP3)
    assert message.properties.message_id == "job-replayed"
    assert message.properties.type == "mp3mesh.jobs.v1.ConversionFinished"
    assert jobs_pb2.ConversionFinished.FromString(message.body).job_id == "job-replayed"
    assert "x-death" not in message.headers


def test_command_line_replay(rabbit_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    park_one(rabbit_url, "job-cli")
    assert main(["replay", "mp3", "--amqp-url", rabbit_url]) == 0
    assert "moved 1 message(s) from mp3.dead back to mp3" in capsys.readouterr().out
