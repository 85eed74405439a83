"""gateway_svc settings, read once from the environment (every problem reported at once)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meshkit.config import COMMON_ENV_VARS, CommonConfig, EnvReader, read_common
from observability.tracing import TRACING_ENV_VARS

DEFAULT_GRPC_PORT = 50050
DEFAULT_HTTP_PORT = 8080
DEFAULT_MAX_UPLOAD_BYTES = 2 * 1024**3

ENV_VARS: tuple[str, ...] = (
    *COMMON_ENV_VARS,
    *TRACING_ENV_VARS,
    "HTTP_PORT",
    "AUTH_TARGET",
    "MONGO_URI",
    "AMQP_URL",
    "PUBLIC_BASE_URL",
    "MAX_UPLOAD_BYTES",
    "AUTH_TIMEOUT_S",
)


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway reads from its environment.

    `public_base_url` is what clients are told (status and download URLs), so it must be the
    address they reach the gateway by, not necessarily where it binds. `environ` is kept for
    the OTEL_* variables, which the tracing set-up reads itself.
    """

    common: CommonConfig
    http_port: int
    auth_target: str
    mongo_uri: str
    amqp_url: str
    public_base_url: str
    max_upload_bytes: int
    auth_timeout_s: float
    environ: Mapping[str, str]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GatewayConfig:
        env = EnvReader(environ)
        common = read_common(env, default_grpc_port=DEFAULT_GRPC_PORT)
        config = cls(
            common=common,
            http_port=env.integer("HTTP_PORT", DEFAULT_HTTP_PORT, minimum=0, maximum=65535),
            auth_target=env.text("AUTH_TARGET", "127.0.0.1:50051"),
            mongo_uri=env.url(
                "MONGO_URI", "mongodb://127.0.0.1:27017/mp3mesh", schemes=("mongodb", "mongodb+srv")
            ),
            amqp_url=env.url(
                "AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F", schemes=("amqp", "amqps")
            ),
            public_base_url=env.url(
                "PUBLIC_BASE_URL", "http://127.0.0.1:8080", schemes=("http", "https")
            ).rstrip("/"),
            max_upload_bytes=env.integer(
                "MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES, minimum=1, maximum=1024**4
            ),
            auth_timeout_s=env.number("AUTH_TIMEOUT_S", 2.0, minimum=0.05, maximum=60.0),
            environ=dict(environ),
        )
        env.finish("gateway_svc")
        return config
