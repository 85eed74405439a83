"""NotifierConfig: local defaults, every problem at once, secrets never shown."""

from __future__ import annotations

import pytest

from meshkit.config import ConfigError
from notifier_svc.config import ENV_VARS, NotifierConfig
from notifier_svc.smtp_url import Security


def test_defaults_point_at_the_local_mesh() -> None:
    config = NotifierConfig.from_env({})
    assert config.common.grpc_port == 50053
    assert config.mongo_uri == "mongodb://127.0.0.1:27017/mp3mesh"
    assert config.amqp_url == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert str(config.smtp) == "smtp://127.0.0.1:2525"
    assert config.smtp_username is None and config.smtp_password is None
    assert config.smtp_from == "mp3mesh <noreply@localhost>"
    assert config.envelope_from == "noreply@localhost"
    assert config.public_base_url == "http://127.0.0.1:8080"
    assert config.concurrency == 4
    assert config.smtp_timeout_s == 15.0


def test_gmail_with_starttls_and_an_app_password() -> None:
    config = NotifierConfig.from_env(
        {
            "SMTP_URL": "smtp+starttls://smtp.gmail.com:587",
            "SMTP_USERNAME": "me@gmail.com",
            "SMTP_PASSWORD": "abcd efgh ijkl mnop",
            "SMTP_FROM": "Me <me@gmail.com>",
            "PUBLIC_BASE_URL": "https://mp3.example.com/",
        }
    )
    assert config.smtp.security is Security.STARTTLS
    assert (config.smtp.host, config.smtp.port) == ("smtp.gmail.com", 587)
    assert config.smtp_password == "abcd efgh ijkl mnop"
    assert config.envelope_from == "me@gmail.com"
    assert config.public_base_url == "https://mp3.example.com"


def test_secrets_are_not_in_the_repr() -> None:
    config = NotifierConfig.from_env(
        {
            "SMTP_URL": "smtps://smtp.example.com",
            "SMTP_USERNAME": "me",
            "SMTP_PASSWORD": "s3cret-pass",
            "AMQP_URL": "amqp://user:brokerpass@rabbit:5672/%2F",
        }
    )
    text = repr(config)
    assert "s3cret-pass" not in text and "brokerpass" not in text
    assert "smtp.example.com" in text


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        NotifierConfig.from_env(
            {
                "SMTP_URL": "smtp://u:p@mail.example.com",
                "SMTP_USERNAME": "only-the-user",
                "SMTP_FROM": "not an address",
                "SMTP_TIMEOUT_S": "0",
                "NOTIFIER_CONCURRENCY": "many",
                "PUBLIC_BASE_URL": "ftp://x",
                "MONGO_URI": "mysql://x",
            }
        )
    message = str(caught.value)
    assert message.startswith("notifier_svc: bad configuration")
    for name in (
        "SMTP_URL",
        "SMTP_USERNAME and SMTP_PASSWORD",
        "SMTP_FROM",
        "SMTP_TIMEOUT_S",
        "NOTIFIER_CONCURRENCY",
        "PUBLIC_BASE_URL",
        "MONGO_URI",
    ):
        assert name in message


def test_a_password_over_plain_smtp_to_another_host_is_refused() -> None:
    with pytest.raises(ConfigError, match="clear text"):
        NotifierConfig.from_env(
            {"SMTP_URL": "smtp://mail.example.com", "SMTP_USERNAME": "u", "SMTP_PASSWORD": "p"}
        )
    local = NotifierConfig.from_env(
        {"SMTP_URL": "smtp://127.0.0.1:2525", "SMTP_USERNAME": "u", "SMTP_PASSWORD": "p"}
    )
    assert local.smtp_username == "u"


def test_a_from_header_cannot_smuggle_a_line_break() -> None:
    with pytest.raises(ConfigError, match="SMTP_FROM"):
        NotifierConfig.from_env({"SMTP_FROM": "me@example.com\r\nBcc: all@example.com"})


def test_notifier_reads_only_the_variables_it_declares() -> None:
    recorded: list[str] = []

    class Recording(dict[str, str]):
        def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
            recorded.append(key)
            return super().get(key, default)

    NotifierConfig.from_env(Recording())
    assert set(recorded) <= set(ENV_VARS)
    assert {"SMTP_URL", "SMTP_PASSWORD", "PUBLIC_BASE_URL"} <= set(recorded)
