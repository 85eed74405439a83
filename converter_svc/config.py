"""converter_svc settings, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from meshkit.config import COMMON_ENV_VARS, CommonConfig, EnvReader, read_common
from observability.tracing import TRACING_ENV_VARS

DEFAULT_PORT = 50052

ENV_VARS: tuple[str, ...] = (
    *COMMON_ENV_VARS,
    *TRACING_ENV_VARS,
    "MONGO_URI",
    "AMQP_URL",
    "CONVERTER_CONCURRENCY",
    "MAX_DURATION_S",
    "DELIVERY_LIMIT",
    "DRAIN_TIMEOUT_S",
)


@dataclass(frozen=True)
class ConverterConfig:
    common: CommonConfig
    mongo_uri: str
    amqp_url: str
    concurrency: int
    max_duration_s: float
    delivery_limit: int
    drain_timeout_s: float
    environ: Mapping[str, str]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ConverterConfig:
        env = EnvReader(environ)
        config = cls(
            common=read_common(env, default_grpc_port=DEFAULT_PORT),
            mongo_uri=env.url(
                "MONGO_URI", "mongodb://127.0.0.1:27017/mp3mesh", schemes=("mongodb", "mongodb+srv")
            ),
            amqp_url=env.url(
                "AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F", schemes=("amqp", "amqps")
            ),
            concurrency=env.integer(
                "CONVERTER_CONCURRENCY", os.cpu_count() or 1, minimum=1, maximum=64
            ),
            max_duration_s=env.number("MAX_DURATION_S", 4 * 3600, minimum=1),
            delivery_limit=env.integer("DELIVERY_LIMIT", 5, minimum=1, maximum=100),
            drain_timeout_s=env.number("DRAIN_TIMEOUT_S", 240, minimum=0),
            environ=dict(environ),
        )
        env.finish("converter_svc")
        return config
