"""The notice: right facts in both parts, plain words for failures, hostile names defused."""

from __future__ import annotations

import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from mp3mesh.jobs.v1 import jobs_pb2

from notifier_svc.compose import (
    REASONS,
    InvalidRecipient,
    MailSettings,
    clock,
    compose,
    human_size,
    message_id,
    mp3_filename,
)

SETTINGS = MailSettings(sender="mp3mesh <noreply@mp3.example>", public_base_url="https://mp3.ex/")
NOW = datetime.datetime(2025, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)


def ready(filename: str = "holiday.mov", **fields: object) -> jobs_pb2.ConversionFinished:
    finished = jobs_pb2.ConversionFinished(
        job_id="0f1e2d3c", owner_email="alice@example.com", filename=filename
    )
    finished.mp3.mp3.size_bytes = int(fields.get("size", 4_321_000))  # type: ignore[call-overload]
    finished.mp3.duration_s = float(fields.get("duration", 205.4))  # type: ignore[arg-type]
    return finished


def failed(
    reason: int, message: str = "", filename: str = "clip.mkv"
) -> jobs_pb2.ConversionFinished:
    finished = jobs_pb2.ConversionFinished(
        job_id="9a8b", owner_email="bob@example.com", filename=filename
    )
    finished.failure.reason = reason  # type: ignore[assignment]
    finished.failure.message = message
    return finished


def wire(message: EmailMessage) -> EmailMessage:
    """What a receiving client sees: the bytes on the wire, parsed again."""
    parsed = message_from_bytes(message.as_bytes(policy=policy.SMTP), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(preferencelist=("plain",))
    rich = message.get_body(preferencelist=("html",))
    assert plain is not None and rich is not None
    return str(plain.get_content()), str(rich.get_content())


def test_ready_mail_has_both_parts_with_name_size_duration_and_link() -> None:
    mail = wire(compose(ready(), SETTINGS, now=NOW))
    assert mail.get_content_type() == "multipart/alternative"
    assert mail["Subject"] == "Your MP3 is ready: holiday.mp3"
    assert mail["To"] == "alice@example.com"
    assert mail["From"] == "mp3mesh <noreply@mp3.example>"
    assert mail["Date"] == "Tue, 04 Mar 2025 05:06:07 +0000"
    plain, rich = parts(mail)
    for body in (plain, rich):
        assert "holiday.mov" in body and "holiday.mp3" in body
        assert "4.3 MB" in body
        assert "3:25" in body
        assert "https://mp3.ex/v1/jobs/0f1e2d3c/mp3" in body
        assert "mp3mesh download 0f1e2d3c" in body
        assert "Bearer" in body
    assert '<a href="https://mp3.ex/v1/jobs/0f1e2d3c/mp3">' in rich


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        (jobs_pb2.FAILURE_REASON_NO_AUDIO, "no audio track"),
        (jobs_pb2.FAILURE_REASON_UNSUPPORTED_MEDIA, "not one we can convert"),
        (jobs_pb2.FAILURE_REASON_CORRUPT_MEDIA, "corrupt or truncated"),
        (jobs_pb2.FAILURE_REASON_TOO_LONG, "longer than the limit"),
        (jobs_pb2.FAILURE_REASON_INTERNAL, "internal error on our side"),
        (jobs_pb2.FAILURE_REASON_UNSPECIFIED, "did not complete"),
    ],
)
def test_failure_mail_says_why_in_plain_words(reason: int, words: str) -> None:
    mail = wire(compose(failed(reason, "stream 0: invalid data"), SETTINGS))
    assert mail["Subject"] == "Conversion failed: clip.mkv"
    plain, rich = parts(mail)
    for body in (plain, rich):
        assert words in body
        assert "stream 0: invalid data" in body
        assert "clip.mkv" in body
        assert "/mp3" not in body  # no download link for a failed job


def test_every_failure_reason_of_the_contract_has_words() -> None:
    named = {v for v in jobs_pb2.FailureReason.values() if v != 0}
    assert named == set(REASONS)


def test_a_hostile_filename_cannot_inject_headers_or_html() -> None:
    name = "evil\r\nBcc: victim@example.com\r\nX-Injected: 1\n<script>alert(1)</script>.mp4"
    mail = wire(compose(ready(name), SETTINGS))
    assert len(mail.get_all("Subject") or []) == 1
    assert mail["Bcc"] is None and mail["X-Injected"] is None
    assert "\n" not in str(mail["Subject"]) and "\r" not in str(mail["Subject"])
    assert str(mail["Subject"]).startswith("Your MP3 is ready: evil Bcc: victim@example.com")
    assert sorted(mail.keys()) == sorted(
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "Auto-Submitted",
            "X-Mp3mesh-Job-Id",
            "MIME-Version",
            "Content-Type",
        ]
    )
    _, rich = parts(mail)
    assert "<script>" not in rich
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.mp3" in rich


def test_failure_message_is_escaped_in_html() -> None:
    mail = wire(
        compose(failed(jobs_pb2.FAILURE_REASON_CORRUPT_MEDIA, '<img src=x onerror="x">'), SETTINGS)
    )
    plain, rich = parts(mail)
    assert "<img" not in rich and "&lt;img src=x onerror=&quot;x&quot;&gt;" in rich
    assert '<img src=x onerror="x">' in plain


def test_a_long_unicode_name_is_folded_and_encoded_not_broken() -> None:
    name = "Ünïcödé \u2013 " + "very long title " * 20 + ".webm"
    raw = compose(ready(name), SETTINGS).as_bytes(policy=policy.SMTP)
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in header_block.split(b"\r\n"))
    subject = str(wire(compose(ready(name), SETTINGS))["Subject"])
    assert subject.startswith("Your MP3 is ready: Ünïcödé \u2013 very long title")
    assert subject.endswith("…")


def test_message_id_is_the_same_for_the_same_job() -> None:
    first = compose(ready(), SETTINGS, now=NOW)
    again = compose(ready(), SETTINGS, now=NOW + datetime.timedelta(hours=1))
    assert first["Message-ID"] == again["Message-ID"] == "<job-0f1e2d3c@mp3mesh>"
    assert message_id("a b>c\r\n") == "<job-a_b_c__@mp3mesh>"


@pytest.mark.parametrize(
    "address", ["", "no-at-sign", "a@b.com, c@d.com", "x@y.com\r\nBcc: z@w.com", "@nouser.com"]
)
def test_an_unusable_address_is_an_invalid_recipient(address: str) -> None:
    finished = ready()
    finished.owner_email = address
    with pytest.raises(InvalidRecipient):
        compose(finished, SETTINGS)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1_536_000, "1.5 MB"),
        (999_999_999, "1.0 GB"),
        (3_200_000_000, "3.2 GB"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0:00"),
        (59.4, "0:59"),
        (59.6, "1:00"),
        (205.4, "3:25"),
        (3600, "1:00:00"),
        (3725.2, "1:02:05"),
    ],
)
def test_clock(seconds: float, text: str) -> None:
    assert clock(seconds) == text


@pytest.mark.parametrize(
    ("name", "mp3"),
    [
        ("holiday.mov", "holiday.mp3"),
        ("noext", "noext.mp3"),
        (".hidden", ".hidden.mp3"),
        ("a.b.mkv", "a.b.mp3"),
        ("", "audio.mp3"),
    ],
)
def test_mp3_filename(name: str, mp3: str) -> None:
    assert mp3_filename(name) == mp3


def test_an_internationalised_domain_goes_out_as_punycode() -> None:
    finished = ready()
    finished.owner_email = "jürgen@bücher.de"
    with pytest.raises(InvalidRecipient):  # non-ASCII local part: would need SMTPUTF8
        compose(finished, SETTINGS)
    finished.owner_email = "juergen@bücher.de"
    assert wire(compose(finished, SETTINGS))["To"] == "juergen@xn--bcher-kva.de"
