"""A local SMTP server that keeps every message it accepts in a Maildir.

Why: on a development machine (`make up`) and in tests, the notifier must talk real SMTP to a
real server — no fake transport — yet nothing may leave the machine. aiosmtpd speaks the
protocol; each accepted message is written as one file under `<maildir>/new/`, readable with
any mail client that opens a Maildir (`mutt -f DIR`), with `python -m mailbox`-style code, or
plainly with `cat`. The envelope is kept as `Return-Path` / `Delivered-To` header lines on
top, as a real MTA does at final delivery.

    python -m meshkit.mailsink --maildir .data/mail --port 2525

`start_mail_sink(..., port=0)` picks a free port (tests); restarting on the same port works
(the listening socket is opened with SO_REUSEADDR).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import mailbox
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Awaitable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

SERVER_NAME = "mp3mesh-mailsink"


class MaildirHandler:
    """aiosmtpd handler: every message accepted goes to the Maildir, one file each.

    Subclass and override `handle_RCPT` (or `handle_DATA`) to answer differently; tests use
    that to refuse chosen recipients with 4xx or 5xx codes.
    """

    def __init__(self, maildir: Path) -> None:
        self.maildir = Path(maildir)
        self._box = mailbox.Maildir(self.maildir, create=True)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content or b""
        trace = [f"Return-Path: <{envelope.mail_from or ''}>"]
        trace += [f"Delivered-To: {rcpt}" for rcpt in envelope.rcpt_tos]
        stored = ("\n".join(trace) + "\n").encode() + content.replace(b"\r\n", b"\n")
        with self._lock:
            self._box.add(stored)
        return "250 2.0.0 OK: message stored"


class _Controller(Controller):  # type: ignore[misc]
    """aiosmtpd's threaded controller, taught to report the port it bound when given 0
    (its own start-up probe connects to `self.port`, which would still be 0)."""

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        creating = super()._create_server()

        async def create() -> asyncio.AbstractServer:
            server: asyncio.AbstractServer = await creating
            sockets = getattr(server, "sockets", ())
            if self.port == 0 and sockets:
                self.port = int(sockets[0].getsockname()[1])
            return server

        return create()


@dataclass
class MailSink:
    """A running sink; `stop()` closes the port (connections in flight are cut)."""

    controller: Any
    maildir: Path
    host: str

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def url(self) -> str:
        """The `SMTP_URL` that points at this sink (plain, or implicit TLS)."""
        scheme = "smtps" if self.controller.ssl_context is not None else "smtp"
        return f"{scheme}://{self.host}:{self.port}"

    def messages(self) -> list[EmailMessage]:
        return read_messages(self.maildir)

    def stop(self) -> None:
        self.controller.stop()


def read_messages(maildir: Path) -> list[EmailMessage]:
    """Every message in the Maildir, oldest first, parsed with the modern email API."""
    box = mailbox.Maildir(maildir, create=False)
    entries = []
    for key in box.iterkeys():
        raw = box.get_bytes(key)
        when = box.get_message(key).get_date()
        entries.append((when, key, raw))
    parser = BytesParser(policy=policy.default)
    return [parser.parsebytes(raw) for _, _, raw in sorted(entries)]  # type: ignore[misc]


def _check_free(host: str, port: int) -> None:
    """Fails fast on a taken port: aiosmtpd itself would only time out after `ready_timeout`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio binds
        probe.bind((host, port))


def start_mail_sink(
    maildir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    handler: MaildirHandler | None = None,
    ssl_context: ssl.SSLContext | None = None,
    **smtp_options: Any,
) -> MailSink:
    """Starts the sink in a background thread and returns once it answers.

    `ssl_context` makes it an implicit-TLS (smtps) server; `smtp_options` go to aiosmtpd's
    SMTP class (e.g. `tls_context=` to offer STARTTLS, `authenticator=`, `auth_required=`).
    Raises OSError (errno EADDRINUSE) if the port is taken.
    """
    if port:
        _check_free(host, port)
    controller = _Controller(
        handler or MaildirHandler(maildir),
        hostname=host,
        port=port,
        ssl_context=ssl_context,
        server_hostname=SERVER_NAME,
        ready_timeout=10.0,
        **smtp_options,
    )
    controller.start()
    return MailSink(controller=controller, maildir=Path(maildir), host=host)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m meshkit.mailsink",
        description="Local SMTP server storing every message in a Maildir.",
    )
    parser.add_argument("--maildir", type=Path, required=True, help="Maildir folder to write")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=2525, help="port (0 = any free port)")
    args = parser.parse_args(argv)
    try:
        sink = start_mail_sink(args.maildir, args.host, args.port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(
                f"error: cannot listen on {args.host}:{args.port}: the port is in use;"
                " stop the other process or pass --port",
                file=sys.stderr,
            )
        else:
            print(f"error: cannot start the mail sink: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    print(
        f"mail sink listening on smtp://{sink.host}:{sink.port}, storing in {sink.maildir}/new",
        flush=True,
    )
    stop.wait()
    sink.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
