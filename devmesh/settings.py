"""Where the local mesh listens and keeps its data; every value can be overridden.

The defaults are the ports of DESIGN.md. Overrides exist so a second mesh (the end-to-end
test, say) can run beside a developer's own on other ports with another data folder.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from meshkit.config import EnvReader

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Ports:
    http: int
    gateway_grpc: int
    auth: int
    converter: int
    notifier: int
    mongo: int
    smtp: int


@dataclass(frozen=True)
class MeshSettings:
    data_dir: Path
    ports: Ports
    host: str
    mysql_url: str | None  # None: devmesh provisions a local database and user
    mongo_uri: str | None  # None: devmesh starts the embedded MongoDB-wire server
    amqp_url: str
    smtp_url: str | None  # None: devmesh starts the local mail sink
    otlp_endpoint: str | None
    max_upload_bytes: str | None
    ready_timeout_s: float

    @property
    def public_base_url(self) -> str:
        return f"http://{self.host}:{self.ports.http}"

    @property
    def maildir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def trace_file(self) -> Path:
        return self.data_dir / "traces" / "spans.jsonl"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def run_file(self) -> Path:
        return self.data_dir / "run.json"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MeshSettings:
        env = EnvReader(environ)

        def port(name: str, default: int) -> int:
            return env.integer(name, default, minimum=1, maximum=65535)

        settings = cls(
            data_dir=Path(env.text("MP3MESH_DATA_DIR", str(REPO / ".data"))).resolve(),
            ports=Ports(
                http=port("HTTP_PORT", 8080),
                gateway_grpc=port("GATEWAY_GRPC_PORT", 50050),
                auth=port("AUTH_GRPC_PORT", 50051),
                converter=port("CONVERTER_GRPC_PORT", 50052),
                notifier=port("NOTIFIER_GRPC_PORT", 50053),
                mongo=port("MONGO_PORT", 27017),
                smtp=port("SMTP_PORT", 2525),
            ),
            host="127.0.0.1",
            mysql_url=env.optional("MYSQL_URL"),
            mongo_uri=env.optional("MONGO_URI"),
            amqp_url=env.text("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
            smtp_url=env.optional("SMTP_URL"),
            otlp_endpoint=env.optional("OTEL_EXPORTER_OTLP_ENDPOINT"),
            max_upload_bytes=env.optional("MAX_UPLOAD_BYTES"),
            ready_timeout_s=env.number("MP3MESH_READY_TIMEOUT_S", 120, minimum=5),
        )
        env.finish("make up")
        return settings


def kept_secret(path: Path) -> str:
    """A random secret created once and kept (mode 0600), so restarts keep logins valid."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
