"""Configuration is read once, typed, and every problem is reported together."""

from __future__ import annotations

import pytest

from auth_svc.config import ENV_VARS, AuthConfig
from meshkit.config import ConfigError, EnvReader


def test_local_mode_runs_without_a_jwt_secret() -> None:
    config = AuthConfig.from_env({"MP3MESH_ENV": "local"})
    assert config.common.local and len(config.jwt_secret) >= 32


def test_production_requires_a_jwt_secret() -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET is required"):
        AuthConfig.from_env({})


def test_short_jwt_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        AuthConfig.from_env({"JWT_SECRET": "short"})


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        AuthConfig.from_env({"GRPC_PORT": "eighty", "MYSQL_URL": "postgres://x", "JWT_TTL_S": "5"})
    message = str(caught.value)
    for name in ("GRPC_PORT", "MYSQL_URL", "JWT_TTL_S", "JWT_SECRET"):
        assert name in message


def test_auth_reads_only_the_variables_it_declares() -> None:
    recorded: list[str] = []

    class Recording(dict[str, str]):
        def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
            recorded.append(key)
            return super().get(key, default)

    AuthConfig.from_env(Recording(MP3MESH_ENV="local"))
    assert set(recorded) <= set(ENV_VARS)


def test_env_reader_rejects_out_of_range_numbers() -> None:
    env = EnvReader({"N": "500"})
    env.integer("N", 1, maximum=100)
    with pytest.raises(ConfigError, match="N=500 is out of range"):
        env.finish("svc")
