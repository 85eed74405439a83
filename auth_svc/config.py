"""auth_svc settings, read once from the environment."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from meshkit.config import COMMON_ENV_VARS, CommonConfig, EnvReader, read_common
from observability.tracing import TRACING_ENV_VARS

log = logging.getLogger(__name__)

DEFAULT_PORT = 50051
MIN_SECRET_BYTES = 32

ENV_VARS: tuple[str, ...] = (
    *COMMON_ENV_VARS,
    *TRACING_ENV_VARS,
    "MYSQL_URL",
    "JWT_SECRET",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_TTL_S",
    "LOGIN_MAX_FAILURES",
    "LOGIN_FAILURE_WINDOW_S",
)


@dataclass(frozen=True)
class AuthConfig:
    common: CommonConfig
    mysql_url: str
    jwt_secret: str
    jwt_issuer: str
    jwt_audience: str
    jwt_ttl_s: int
    login_max_failures: int
    login_failure_window_s: int
    environ: Mapping[str, str]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AuthConfig:
        env = EnvReader(environ)
        common = read_common(env, default_grpc_port=DEFAULT_PORT)
        mysql_url = env.url(
            "MYSQL_URL", "mysql://mp3mesh:mp3mesh@127.0.0.1:3306/auth", schemes=("mysql",)
        )
        secret = env.optional("JWT_SECRET")
        if secret is None:
            if common.local:
                log.warning("JWT_SECRET is not set: using a random one (tokens die on restart)")
                secret = secrets.token_urlsafe(48)
            else:
                env.fail("JWT_SECRET is required outside local mode (MP3MESH_ENV=local)")
                secret = ""
        elif len(secret.encode()) < MIN_SECRET_BYTES:
            env.fail(f"JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        config = cls(
            common=common,
            mysql_url=mysql_url,
            jwt_secret=secret,
            jwt_issuer=env.text("JWT_ISSUER", "mp3mesh-auth"),
            jwt_audience=env.text("JWT_AUDIENCE", "mp3mesh"),
            jwt_ttl_s=env.integer("JWT_TTL_S", 3600, minimum=60, maximum=7 * 86400),
            login_max_failures=env.integer("LOGIN_MAX_FAILURES", 5, minimum=1),
            login_failure_window_s=env.integer("LOGIN_FAILURE_WINDOW_S", 900, minimum=1),
            environ=dict(environ),
        )
        env.finish("auth_svc")
        return config
