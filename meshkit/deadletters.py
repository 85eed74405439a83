"""Puts dead-lettered messages back on their work queue, once the cause is fixed.

A message reaches `video.dead` or `mp3.dead` after its delivery limit (e.g. an SMTP outage of
over an hour, or MongoDB gone for longer than the converter retries). The handlers are
idempotent on the job id, so replaying is always safe: a finished job only re-publishes, a
notified one is not mailed twice.

    python -m meshkit.deadletters list mp3        # what is parked, and why
    python -m meshkit.deadletters replay mp3      # move it all back to `mp3`

Each message is re-published to the work queue with confirms before it is acked on the
dead-letter queue, so a failure half-way loses nothing (at worst one message is replayed twice).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any

import pika

from meshkit.amqp import QUEUES, dead_letter_queue, open_channel


@dataclass(frozen=True)
class Parked:
    message_id: str
    message_type: str
    reason: str  # from the x-death header: "delivery_limit", "rejected", ...


def _reason(headers: dict[str, Any] | None) -> str:
    deaths = (headers or {}).get("x-death") or []
    if not deaths or not isinstance(deaths[0], dict):
        return ""
    reason = deaths[0].get("reason", "")
    return reason.decode() if isinstance(reason, bytes) else str(reason)


def list_parked(amqp_url: str, queue: str, *, limit: int = 1000) -> list[Parked]:
    """Peeks at the parked messages (they stay parked: nothing is acked)."""
    parked: list[Parked] = []
    with open_channel(amqp_url, name="deadletters list") as channel:
        channel.basic_qos(prefetch_count=limit)
        while len(parked) < limit:
            method, properties, _ = channel.basic_get(dead_letter_queue(queue), auto_ack=False)
            if method is None:
                break
            parked.append(
                Parked(
                    properties.message_id or "", properties.type or "", _reason(properties.headers)
                )
            )
        # closing the channel without acks returns every peeked message to the queue
    return parked


def replay(amqp_url: str, queue: str, *, limit: int | None = None) -> int:
    """Moves parked messages back to `queue`; returns how many were moved."""
    moved = 0
    with open_channel(amqp_url, name="deadletters replay") as channel:
        channel.confirm_delivery()
        while limit is None or moved < limit:
            method, properties, body = channel.basic_get(dead_letter_queue(queue), auto_ack=False)
            if method is None:
                break
            headers = {
                k: v for k, v in (properties.headers or {}).items() if not k.startswith("x-")
            }
            republished = pika.BasicProperties(
                content_type=properties.content_type,
                delivery_mode=pika.DeliveryMode.Persistent,
                type=properties.type,
                message_id=properties.message_id,
                app_id=properties.app_id,
                timestamp=properties.timestamp,
                headers=headers,
            )
            channel.basic_publish("", queue, body, republished, mandatory=True)
            channel.basic_ack(method.delivery_tag)
            moved += 1
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m meshkit.deadletters",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=("list", "replay"))
    parser.add_argument("queue", choices=QUEUES)
    parser.add_argument("--limit", type=int, help="at most this many messages")
    parser.add_argument(
        "--amqp-url",
        default=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
        help="default: $AMQP_URL",
    )
    args = parser.parse_args(argv)
    if args.command == "list":
        parked = list_parked(args.amqp_url, args.queue, limit=args.limit or 1000)
        for item in parked:
            print(f"{item.message_id}  {item.message_type}  {item.reason}")
        print(f"{len(parked)} message(s) parked in {dead_letter_queue(args.queue)}")
        return 0
    moved = replay(args.amqp_url, args.queue, limit=args.limit)
    print(f"moved {moved} message(s) from {dead_letter_queue(args.queue)} back to {args.queue}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
