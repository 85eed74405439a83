"""meshkit.mailsink: the local SMTP server `make up` runs, storing mail in a Maildir."""

from __future__ import annotations

import mailbox
import signal
import smtplib
from pathlib import Path

from meshkit.mailsink import read_messages, start_mail_sink
from tests.fixtures.processes import start_module, wait_until


def send(port: int, subject: str, to: str = "dave@example.net") -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(
            "noreply@mp3.example", [to], f"Subject: {subject}\r\nTo: {to}\r\n\r\nhi\r\n"
        )


def test_port_zero_binds_a_real_port_and_mail_lands_in_maildir_new(tmp_path: Path) -> None:
    sink = start_mail_sink(tmp_path / "mail")
    try:
        assert sink.port > 0
        assert sink.url == f"smtp://127.0.0.1:{sink.port}"
        send(sink.port, "first")
        send(sink.port, "second")
    finally:
        sink.stop()
    files = sorted((tmp_path / "mail" / "new").iterdir())
    assert len(files) == 2
    assert len(mailbox.Maildir(tmp_path / "mail")) == 2
    messages = read_messages(tmp_path / "mail")
    assert [m["Subject"] for m in messages] == ["first", "second"]
    assert messages[0]["Delivered-To"] == "dave@example.net"
    assert messages[0]["Return-Path"] == "<noreply@mp3.example>"
    assert b"\r\n" not in files[0].read_bytes()  # stored with local line endings


def test_a_restart_on_the_same_port_keeps_earlier_mail(tmp_path: Path) -> None:
    sink = start_mail_sink(tmp_path / "mail")
    port = sink.port
    send(port, "before")
    sink.stop()
    again = start_mail_sink(tmp_path / "mail", port=port)
    try:
        send(port, "after")
    finally:
        again.stop()
    assert [m["Subject"] for m in read_messages(tmp_path / "mail")] == ["before", "after"]


def test_command_runs_until_sigterm_and_exits_zero(tmp_path: Path) -> None:
    from tests.fixtures.processes import free_port

    port = free_port()
    process = start_module(
        "meshkit.mailsink", {}, args=("--maildir", str(tmp_path / "box"), "--port", str(port))
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert f"smtp://127.0.0.1:{port}" in line and str(tmp_path / "box") in line
        send(port, "via the command")
        wait_until(
            lambda: len(read_messages(tmp_path / "box")) == 1, timeout_s=10, what="stored mail"
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_command_reports_a_busy_port_in_one_line(tmp_path: Path) -> None:
    sink = start_mail_sink(tmp_path / "mail")
    try:
        process = start_module(
            "meshkit.mailsink",
            {},
            args=("--maildir", str(tmp_path / "x"), "--port", str(sink.port)),
        )
        _, stderr = process.communicate(timeout=30)
    finally:
        sink.stop()
    assert process.returncode == 2
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "in use" in lines[0]
