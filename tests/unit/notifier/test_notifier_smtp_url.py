"""SMTP_URL: three schemes, each meaning one way of using TLS; anything else is refused."""

from __future__ import annotations

import pytest

from notifier_svc.smtp_url import Security, SmtpUrlError, parse_smtp_url


@pytest.mark.parametrize(
    ("url", "host", "port", "security"),
    [
        ("smtp://127.0.0.1:2525", "127.0.0.1", 2525, Security.PLAIN),
        ("smtp://mail.internal", "mail.internal", 25, Security.PLAIN),
        ("smtp+starttls://smtp.gmail.com:587", "smtp.gmail.com", 587, Security.STARTTLS),
        ("smtp+starttls://smtp.example.com", "smtp.example.com", 587, Security.STARTTLS),
        ("SMTPS://smtp.example.com", "smtp.example.com", 465, Security.IMPLICIT_TLS),
        ("smtps://[::1]:4650/", "::1", 4650, Security.IMPLICIT_TLS),
    ],
)
def test_the_three_forms_and_their_default_ports(
    url: str, host: str, port: int, security: Security
) -> None:
    target = parse_smtp_url(url)
    assert (target.host, target.port, target.security) == (host, port, security)


def test_a_target_prints_back_as_a_url_without_secrets() -> None:
    assert str(parse_smtp_url("smtp+starttls://smtp.gmail.com")) == (
        "smtp+starttls://smtp.gmail.com:587"
    )
    assert str(parse_smtp_url("smtps://[::1]")) == "smtps://[::1]:465"


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://mail.example.com", "scheme must be one of"),
        ("mail.example.com:25", "scheme must be one of"),
        ("smtp://user:secret@mail.example.com", "must not contain credentials"),
        ("smtp://mail.example.com:587?starttls=1", "smtp+starttls://"),
        ("smtp://mail.example.com/inbox", "takes no path"),
        ("smtp://:25", "needs a host"),
        ("smtp://mail.example.com:99999", "invalid port"),
        ("smtp://mail.example.com:0", "between 1 and 65535"),
    ],
)
def test_malformed_urls_say_what_to_write(url: str, complaint: str) -> None:
    with pytest.raises(SmtpUrlError, match=complaint.replace("+", r"\+").replace("?", r"\?")):
        parse_smtp_url(url)


def test_credentials_in_the_url_are_not_echoed_in_the_error() -> None:
    with pytest.raises(SmtpUrlError) as caught:
        parse_smtp_url("smtps://me:hunter2@mail.example.com")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("smtp://127.0.0.1:2525", True),
        ("smtp://localhost", True),
        ("smtp://[::1]", True),
        ("smtp://10.0.0.5", False),
        ("smtp://mail.example.com", False),
    ],
)
def test_loopback_detection(url: str, loopback: bool) -> None:
    assert parse_smtp_url(url).loopback is loopback
