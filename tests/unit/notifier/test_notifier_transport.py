"""SMTP sending against real aiosmtpd servers: plain, STARTTLS + AUTH, implicit TLS; every
failure sorted into "retry" or "give up", and retries bounded."""

from __future__ import annotations

import smtplib
import ssl
import threading
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from notifier_svc.smtp_url import parse_smtp_url
from notifier_svc.transport import (
    PermanentSendError,
    RetryPolicy,
    SmtpSender,
    SmtpTransport,
    TemporarySendError,
    classify,
)
from tests.fixtures.smtp import SmtpSinkServer, TlsFiles

FAST = RetryPolicy(attempts=3, first_delay_s=0.01, max_delay_s=0.02)
RCPT = "carol@example.org"


def mail(subject: str = "hello") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "mp3mesh <noreply@mp3.example>"
    message["To"] = RCPT
    message["Subject"] = subject
    message.set_content("body")
    return message


def sender_for(url: str, *, retry: RetryPolicy = FAST, **kwargs: Any) -> SmtpSender:
    transport = SmtpTransport(parse_smtp_url(url), timeout_s=5, **kwargs)
    return SmtpSender(transport, envelope_from="noreply@mp3.example", retry=retry)


def test_plain_smtp_delivers_to_the_sink(smtp_sink: SmtpSinkServer) -> None:
    attempts = sender_for(smtp_sink.url).send(mail("plain"), job_id="j1", recipient=RCPT)
    assert attempts == 1
    [stored] = smtp_sink.messages()
    assert stored["Subject"] == "plain"
    assert stored["Delivered-To"] == RCPT
    assert stored["Return-Path"] == "<noreply@mp3.example>"


def test_550_for_the_recipient_is_permanent_and_not_retried(smtp_sink: SmtpSinkServer) -> None:
    smtp_sink.reject(RCPT, "550 5.1.1 no such user")
    with pytest.raises(PermanentSendError, match=r"550 5\.1\.1 no such user"):
        sender_for(smtp_sink.url).send(mail(), job_id="j1", recipient=RCPT)
    assert smtp_sink.attempts(RCPT) == 1
    assert smtp_sink.messages() == []


def test_451_is_temporary_and_retried_up_to_the_policy(smtp_sink: SmtpSinkServer) -> None:
    smtp_sink.reject(RCPT, "451 4.3.0 try again later")
    with pytest.raises(TemporarySendError, match="451"):
        sender_for(smtp_sink.url).send(mail(), job_id="j1", recipient=RCPT)
    assert smtp_sink.attempts(RCPT) == 3


def test_an_unreachable_server_is_temporary(smtp_sink_down: SmtpSinkServer) -> None:
    with pytest.raises(TemporarySendError, match="unreachable"):
        sender_for(smtp_sink_down.url).send(mail(), job_id="j1", recipient=RCPT)


def test_a_server_back_between_attempts_gets_the_mail(smtp_sink_down: SmtpSinkServer) -> None:
    """The in-process retry bridges a short outage without giving the message back."""
    sender = sender_for(
        smtp_sink_down.url, retry=RetryPolicy(attempts=5, first_delay_s=0.2, max_delay_s=0.5)
    )
    original = sender.transport.send_once
    calls: list[int] = []

    def start_after_first_failure(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            smtp_sink_down.start()
        original(*args, **kwargs)

    sender.transport.send_once = start_after_first_failure  # type: ignore[method-assign]
    assert sender.send(mail("after outage"), job_id="j1", recipient=RCPT) == 2
    assert [m["Subject"] for m in smtp_sink_down.messages()] == ["after outage"]


def test_a_lost_claim_stops_the_retries(smtp_sink_down: SmtpSinkServer) -> None:
    sender = sender_for(
        smtp_sink_down.url, retry=RetryPolicy(attempts=50, first_delay_s=30, max_delay_s=30)
    )
    asked: list[int] = []

    def claim_lost() -> bool:
        asked.append(1)
        return False

    with pytest.raises(TemporarySendError):
        sender.send(mail(), job_id="j1", recipient=RCPT, keep_going=claim_lost)
    assert asked == [1]  # asked once, before the first pause, and then no second attempt


def test_the_default_policy_rides_out_a_long_outage_per_delivery() -> None:
    policy = RetryPolicy()
    assert sum(policy.delays()) >= 10 * 60
    assert max(policy.delays()) <= 60
    assert sum(policy.delays()) < 30 * 60  # under RabbitMQ's default consumer_timeout


def test_stopping_cuts_the_retries_short(smtp_sink_down: SmtpSinkServer) -> None:
    sender = sender_for(
        smtp_sink_down.url, retry=RetryPolicy(attempts=50, first_delay_s=30, max_delay_s=30)
    )
    sender.stopping.set()
    with pytest.raises(TemporarySendError):
        sender.send(mail(), job_id="j1", recipient=RCPT)  # would take 25 min otherwise


def test_starttls_with_login_over_a_verified_certificate(
    tmp_path: Any, tls_files: TlsFiles
) -> None:
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"app-password", handled=False)

    sink = SmtpSinkServer(
        tmp_path / "mail",
        tls_context=tls_files.server_context(),
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    ).start()
    try:
        url = f"smtp+starttls://localhost:{sink.port}"
        good = sender_for(
            url, username="me", password="app-password", ssl_context=tls_files.client_context()
        )
        assert good.send(mail("over tls"), job_id="j1", recipient=RCPT) == 1
        assert [m["Subject"] for m in sink.messages()] == ["over tls"]
        assert logins == [(b"me", b"app-password")]
        bad = sender_for(
            url, username="me", password="wrong", ssl_context=tls_files.client_context()
        )
        with pytest.raises(TemporarySendError, match="login refused") as caught:
            bad.send(mail(), job_id="j2", recipient=RCPT)
        assert "wrong" not in str(caught.value)
    finally:
        sink.stop()


def test_starttls_refuses_an_untrusted_certificate(tmp_path: Any, tls_files: TlsFiles) -> None:
    sink = SmtpSinkServer(
        tmp_path / "mail", tls_context=tls_files.server_context(), require_starttls=True
    ).start()
    try:
        system_trust = sender_for(f"smtp+starttls://localhost:{sink.port}")
        with pytest.raises(TemporarySendError, match="TLS failed"):
            system_trust.send(mail(), job_id="j1", recipient=RCPT)
        assert sink.messages() == []
    finally:
        sink.stop()


def test_starttls_never_falls_back_to_plain(smtp_sink: SmtpSinkServer) -> None:
    url = f"smtp+starttls://127.0.0.1:{smtp_sink.port}"  # the plain sink offers no STARTTLS
    with pytest.raises(TemporarySendError, match="extension"):
        sender_for(url).send(mail(), job_id="j1", recipient=RCPT)
    assert smtp_sink.messages() == []


def test_implicit_tls(tmp_path: Any, tls_files: TlsFiles) -> None:
    sink = SmtpSinkServer(tmp_path / "mail", ssl_context=tls_files.server_context()).start()
    try:
        sender = sender_for(
            f"smtps://localhost:{sink.port}", ssl_context=tls_files.client_context()
        )
        assert sender.send(mail("smtps"), job_id="j1", recipient=RCPT) == 1
        assert [m["Subject"] for m in sink.messages()] == ["smtps"]
    finally:
        sink.stop()


class Recorder:
    """Stands in for smtplib's classes to see which one is used and in what order."""

    calls: list[tuple[str, Any]]

    def __init__(self, kind: str, host: str, port: int, **kwargs: Any) -> None:
        self.calls.append((kind, (host, port, sorted(kwargs))))
        self.context = kwargs.get("context")

    def ehlo(self) -> None:
        self.calls.append(("ehlo", None))

    def starttls(self, *, context: ssl.SSLContext) -> None:
        self.calls.append(("starttls", context))

    def login(self, user: str, password: str) -> None:
        self.calls.append(("login", user))

    def quit(self) -> None:
        self.calls.append(("quit", None))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://h:25", ["SMTP", "ehlo", "login"]),
        ("smtp+starttls://h:587", ["SMTP", "ehlo", "starttls", "ehlo", "login"]),
        ("smtps://h:465", ["SMTP_SSL", "ehlo", "login"]),
    ],
)
def test_which_smtplib_class_and_handshake_each_scheme_uses(
    monkeypatch: pytest.MonkeyPatch, url: str, expected: list[str]
) -> None:
    calls: list[tuple[str, Any]] = []
    Recorder.calls = calls
    monkeypatch.setattr(smtplib, "SMTP", lambda h, p, **kw: Recorder("SMTP", h, p, **kw))
    monkeypatch.setattr(smtplib, "SMTP_SSL", lambda h, p, **kw: Recorder("SMTP_SSL", h, p, **kw))
    context = ssl.create_default_context()
    transport = SmtpTransport(
        parse_smtp_url(url), username="u", password="p", timeout_s=7, ssl_context=context
    )
    connection: Any = transport.connect()
    assert [name for name, _ in calls] == expected
    assert calls[0][1][2] == (
        ["context", "local_hostname", "timeout"]
        if url.startswith("smtps")
        else ["local_hostname", "timeout"]
    )
    if "starttls" in expected:
        assert dict(calls)["starttls"] is context
    if url.startswith("smtps"):
        assert connection.context is context


def test_without_a_given_context_tls_verifies_against_the_system_store() -> None:
    context = SmtpTransport(parse_smtp_url("smtps://h")).tls_context()
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname


@pytest.mark.parametrize(
    ("exc", "permanent"),
    [
        (smtplib.SMTPRecipientsRefused({"a@b.c": (550, b"no such user")}), True),
        (smtplib.SMTPRecipientsRefused({"a@b.c": (452, b"mailbox full")}), False),
        (smtplib.SMTPDataError(554, b"spam"), True),
        (smtplib.SMTPDataError(451, b"local error"), False),
        (smtplib.SMTPSenderRefused(550, b"not allowed", "x@y"), False),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), False),
        (smtplib.SMTPServerDisconnected("gone"), False),
        (smtplib.SMTPConnectError(554, b"go away"), False),
        (smtplib.SMTPNotSupportedError("STARTTLS extension not supported"), False),
        (ConnectionRefusedError(111, "refused"), False),
        (TimeoutError("timed out"), False),
        (ssl.SSLError("bad cert"), False),
    ],
)
def test_classification(exc: BaseException, permanent: bool) -> None:
    assert classify(exc).permanent is permanent


def test_retry_delays_grow_exponentially_up_to_the_cap() -> None:
    assert RetryPolicy(attempts=5, first_delay_s=1, max_delay_s=5).delays() == [1, 2, 4, 5]
    assert RetryPolicy(attempts=1).delays() == []


def test_the_span_shows_the_domain_but_never_the_address(smtp_sink: SmtpSinkServer) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    transport = SmtpTransport(parse_smtp_url(smtp_sink.url), username="u", password="pw-secret")
    sender = SmtpSender(
        transport,
        envelope_from="noreply@mp3.example",
        retry=FAST,
        tracer=provider.get_tracer("test"),
    )
    smtp_sink.reject(RCPT, "451 4.3.0 later")
    with pytest.raises(TemporarySendError):
        sender.send(mail(), job_id="job-7", recipient=RCPT)
    [span] = exporter.get_finished_spans()
    assert span.name == "smtp send"
    attributes = dict(span.attributes or {})
    assert attributes["mp3mesh.job_id"] == "job-7"
    assert attributes["smtp.recipient_domain"] == "example.org"
    assert attributes["smtp.attempts"] == 3
    dump = repr(attributes) + repr([e.attributes for e in span.events]) + repr(transport)
    assert "carol" not in dump and "pw-secret" not in dump


def test_concurrent_sends_each_get_their_own_connection(smtp_sink: SmtpSinkServer) -> None:
    sender = sender_for(smtp_sink.url)
    threads = [
        threading.Thread(
            target=sender.send, args=(mail(f"m{i}"),), kwargs={"job_id": str(i), "recipient": RCPT}
        )
        for i in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(str(m["Subject"]) for m in smtp_sink.messages()) == [f"m{i}" for i in range(6)]
