"""Typed settings from environment variables, read once and failing fast.

Every service builds a frozen dataclass from one `EnvReader` pass at start-up; all
problems are collected so a misconfigured deployment reports every bad variable in one
clear message instead of one per restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

LOCAL = "local"
PRODUCTION = "production"


class ConfigError(Exception):
    """One or more settings are missing or malformed; the message lists them all."""


class EnvReader:
    """Reads typed values from a mapping and remembers which names were read."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._errors: list[str] = []
        self.names_read: list[str] = []

    def _raw(self, name: str) -> str | None:
        self.names_read.append(name)
        value = self._environ.get(name)
        return value.strip() if value is not None and value.strip() != "" else None

    def text(self, name: str, default: str) -> str:
        value = self._raw(name)
        return default if value is None else value

    def optional(self, name: str) -> str | None:
        return self._raw(name)

    def required(self, name: str, *, why: str = "") -> str:
        value = self._raw(name)
        if value is None:
            self._errors.append(f"{name} is required{': ' + why if why else ''}")
            return ""
        return value

    def integer(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        return int(self._number(name, default, int, minimum, maximum))

    def number(
        self,
        name: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        return float(self._number(name, default, float, minimum, maximum))

    def _number(
        self,
        name: str,
        default: float,
        kind: type[int] | type[float],
        minimum: float | None,
        maximum: float | None,
    ) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            self._errors.append(f"{name}={raw!r} is not a {kind.__name__}")
            return default
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self._errors.append(f"{name}={raw} is out of range [{minimum}, {maximum}]")
            return default
        return value

    def url(self, name: str, default: str, *, schemes: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if urlsplit(value).scheme not in schemes:
            self._errors.append(f"{name} must be a URL with scheme {' or '.join(schemes)}")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if value not in choices:
            self._errors.append(f"{name}={value!r} must be one of {', '.join(choices)}")
        return value

    def fail(self, message: str) -> None:
        self._errors.append(message)

    def finish(self, service: str) -> None:
        """Raises one ConfigError naming every problem found."""
        if self._errors:
            problems = "; ".join(self._errors)
            raise ConfigError(f"{service}: bad configuration: {problems}")


@dataclass(frozen=True)
class CommonConfig:
    """Settings every service has."""

    mode: str
    log_level: str
    grpc_port: int
    bind_host: str

    @property
    def local(self) -> bool:
        return self.mode == LOCAL


COMMON_ENV_VARS = ("MP3MESH_ENV", "LOG_LEVEL", "GRPC_PORT", "BIND_HOST")


def read_common(env: EnvReader, *, default_grpc_port: int) -> CommonConfig:
    return CommonConfig(
        mode=env.choice("MP3MESH_ENV", PRODUCTION, (LOCAL, PRODUCTION)),
        log_level=env.choice(
            "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        ),
        grpc_port=env.integer("GRPC_PORT", default_grpc_port, minimum=0, maximum=65535),
        bind_host=env.text("BIND_HOST", "0.0.0.0"),
    )
