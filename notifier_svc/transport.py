"""Sending one message over SMTP, with every failure sorted into "later" or "never".

The split matters because the two answers lead to opposite actions: a *temporary* failure
(server unreachable, timeout, dropped connection, any 4xx) must be retried until the mail goes
out, while a *permanent* one (5xx for this recipient or this content) must be recorded and
dropped, or the queue would retry it forever. Failures that are the operator's to fix —
refused credentials, STARTTLS missing, a bad certificate, our sender address refused — are
classified temporary on purpose: they hit every mail alike, so recording each job as failed
would lose them all, whereas retrying lets the delivery limit park them in `mp3.dead` for a
replay once the setting is fixed.

`SmtpSender.send` retries temporary failures a few times in-process with exponential backoff
(a short SMTP blip then costs no queue redelivery) and traces the conversation as one
`smtp send` span that carries the job id and the recipient's *domain* only.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from opentelemetry import trace

from notifier_svc.smtp_url import Security, SmtpTarget

log = logging.getLogger(__name__)

MAX_DETAIL = 300


class SendError(Exception):
    """Sending failed; `detail` is safe to store on the job and log (no credentials)."""

    permanent = False

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail[:MAX_DETAIL]


class TemporarySendError(SendError):
    """Try again later: the server is away, busy, or misconfigured on our side."""


class PermanentSendError(SendError):
    """The server refused this message for good (5xx for the recipient or the content)."""

    permanent = True


@dataclass(frozen=True)
class RetryPolicy:
    """In-process attempts per delivery, before the message goes back to the queue.

    The default rides out about 14 minutes of SMTP outage per delivery (pauses of 1 s
    doubling to 60 s), so with the queue's delivery limit an outage of over an hour passes
    without a mail reaching `mp3.dead`; it stays under RabbitMQ's 30-minute consumer timeout.
    The claim is renewed before each pause (see `SmtpSender.send`).
    """

    attempts: int = 20
    first_delay_s: float = 1.0
    multiplier: float = 2.0
    max_delay_s: float = 60.0

    def delays(self) -> list[float]:
        """The pauses between attempts: `attempts - 1` of them, growing exponentially."""
        return [
            min(self.first_delay_s * self.multiplier**i, self.max_delay_s)
            for i in range(max(self.attempts - 1, 0))
        ]


def _reply(code: int, text: bytes | str) -> str:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(message.split())}"


def classify(exc: BaseException) -> SendError:
    """The SendError an smtplib/socket exception stands for (see the module docstring)."""
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = list(exc.recipients.values())
        detail = "recipient refused: " + "; ".join(_reply(c, t) for c, t in replies)
        if replies and all(code >= 500 for code, _ in replies):
            return PermanentSendError(detail)
        return TemporarySendError(detail)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return TemporarySendError(
            f"SMTP login refused (check SMTP_USERNAME and SMTP_PASSWORD): {exc.smtp_code}"
        )
    if isinstance(exc, smtplib.SMTPSenderRefused):
        reply = _reply(exc.smtp_code, exc.smtp_error)
        return TemporarySendError(f"sender refused (check SMTP_FROM): {reply}")
    if isinstance(exc, smtplib.SMTPDataError | smtplib.SMTPResponseException):
        detail = f"message refused: {_reply(exc.smtp_code, exc.smtp_error)}"
        if 500 <= exc.smtp_code < 600 and isinstance(exc, smtplib.SMTPDataError):
            return PermanentSendError(detail)
        return TemporarySendError(detail)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return TemporarySendError(f"SMTP server lacks a needed extension: {exc}")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TemporarySendError(f"SMTP server disconnected: {exc}")
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return TemporarySendError(f"TLS failed: {exc}")
    if isinstance(exc, OSError):  # refused, unreachable, timeout, DNS failure
        return TemporarySendError(f"SMTP server unreachable: {exc.__class__.__name__}: {exc}")
    if isinstance(exc, smtplib.SMTPException):
        return TemporarySendError(f"SMTP error: {exc}")
    return TemporarySendError(f"unexpected error while sending: {exc.__class__.__name__}")


def recipient_domain(address: str) -> str:
    """The part after the last `@` (what traces and logs may show of an address)."""
    return address.rpartition("@")[2].lower()


class SmtpTransport:
    """One SMTP conversation per message: connect, secure, log in, send, quit.

    A fresh connection per mail keeps the code free of idle-connection bookkeeping; at a
    notifier's volume (one mail per conversion) the handshake cost does not matter.
    """

    def __init__(
        self,
        target: SmtpTarget,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 15.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self.target = target
        self._username = username
        self._password = password
        self._timeout_s = timeout_s
        self._ssl_context = ssl_context
        self._local_hostname = local_hostname

    def __repr__(self) -> str:  # never show the password
        return f"SmtpTransport({self.target}, user={'set' if self._username else 'none'})"

    def tls_context(self) -> ssl.SSLContext:
        """The given context, else the system's trust store with hostname checking."""
        return self._ssl_context or ssl.create_default_context()

    def connect(self) -> smtplib.SMTP:
        """An open, secured and logged-in connection (the caller quits it)."""
        host, port, timeout = self.target.host, self.target.port, self._timeout_s
        smtp: smtplib.SMTP
        if self.target.security is Security.IMPLICIT_TLS:
            smtp = smtplib.SMTP_SSL(
                host,
                port,
                local_hostname=self._local_hostname,
                timeout=timeout,
                context=self.tls_context(),
            )
        else:
            smtp = smtplib.SMTP(host, port, local_hostname=self._local_hostname, timeout=timeout)
        try:
            smtp.ehlo()
            if self.target.security is Security.STARTTLS:
                # starttls() raises SMTPNotSupportedError if the server does not offer it:
                # we never fall back to plain text once TLS was asked for.
                smtp.starttls(context=self.tls_context())
                smtp.ehlo()
            if self._username is not None and self._password is not None:
                smtp.login(self._username, self._password)
        except BaseException:
            _close_quietly(smtp)
            raise
        return smtp

    def send_once(self, message: EmailMessage, *, envelope_from: str, recipient: str) -> None:
        """One attempt; raises a SendError (classified) on any failure."""
        try:
            smtp = self.connect()
        except Exception as exc:
            raise classify(exc) from exc
        try:
            refused = smtp.send_message(message, from_addr=envelope_from, to_addrs=[recipient])
            if refused:  # only possible with several recipients; kept for completeness
                raise smtplib.SMTPRecipientsRefused(refused)
        except Exception as exc:
            raise classify(exc) from exc
        finally:
            _close_quietly(smtp)


def _close_quietly(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


class SmtpSender:
    """Sends with in-process retries; a stop event cuts the retries short at shutdown."""

    def __init__(
        self,
        transport: SmtpTransport,
        *,
        envelope_from: str,
        retry: RetryPolicy | None = None,
        stopping: threading.Event | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.transport = transport
        self._tracer = tracer or trace.get_tracer(__name__)
        self.envelope_from = envelope_from
        self.retry = retry or RetryPolicy()
        self.stopping = stopping or threading.Event()

    def attempt_bound_s(self, timeout_s: float) -> float:
        """A generous bound on one attempt and the pause after it (for the notification
        lease, renewed before every pause): a handful of round trips bounded by the socket
        timeout, plus the longest pause."""
        return timeout_s * 4 + self.retry.max_delay_s

    def send(
        self,
        message: EmailMessage,
        *,
        job_id: str,
        recipient: str,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> int:
        """Sends or raises the last SendError; returns how many attempts it took.

        `keep_going` is asked before each pause (the handler renews its claim there, and
        says no once the message can no longer be acked): no means stop retrying now.
        """
        delays = self.retry.delays()
        with self._tracer.start_as_current_span(
            "smtp send",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "mp3mesh.job_id": job_id,
                "smtp.recipient_domain": recipient_domain(recipient),
                "smtp.server": str(self.transport.target),
            },
        ) as span:
            attempt = 0
            while True:
                attempt += 1
                span.set_attribute("smtp.attempts", attempt)
                try:
                    self.transport.send_once(
                        message, envelope_from=self.envelope_from, recipient=recipient
                    )
                    return attempt
                except SendError as error:
                    span.add_event("attempt failed", {"detail": error.detail})
                    retry = not error.permanent and attempt <= len(delays)
                    if retry and not self.stopping.is_set() and keep_going():
                        log.warning(
                            "smtp attempt failed, retrying",
                            extra={"job_id": job_id, "attempt": attempt, "detail": error.detail},
                        )
                        if not self.stopping.wait(delays[attempt - 1]):
                            continue
                    span.set_status(trace.Status(trace.StatusCode.ERROR, error.detail))
                    span.set_attribute("smtp.permanent", error.permanent)
                    raise
