"""`make up`: the whole mesh on this machine, ready when it says so, stopped by Ctrl-C."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from devmesh.provision import (
    SetupError,
    data_folders,
    port_answers,
    provision_mysql,
    require_free_ports,
    require_rabbitmq,
)
from devmesh.settings import MeshSettings, kept_secret
from devmesh.supervisor import Child, Supervisor
from meshkit.config import ConfigError


def say(message: str) -> None:
    print(f"mp3mesh: {message}", file=sys.stderr, flush=True)


def _grpc_serving(port: int) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _http_ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class MeshRunner:
    def __init__(self, settings: MeshSettings) -> None:
        self.settings = settings
        self.supervisor = Supervisor()
        self.python = sys.executable
        self.bin = Path(sys.executable).parent

    def _log(self, name: str) -> Path:
        return self.settings.log_dir / f"{name}.log"

    def _common_env(self, service: str, grpc_port: int) -> dict[str, str]:
        env = {
            "MP3MESH_ENV": "local",
            "BIND_HOST": "127.0.0.1",
            "GRPC_PORT": str(grpc_port),
            "OTEL_SERVICE_NAME": service,
            "PYTHONUNBUFFERED": "1",
        }
        if self.settings.otlp_endpoint:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = self.settings.otlp_endpoint
        else:
            env["MP3MESH_TRACE_FILE"] = str(self.settings.trace_file)
        return env

    def _wait(self, what: str, ready: Callable[[], bool], children: list[Child]) -> None:
        deadline = time.monotonic() + self.settings.ready_timeout_s
        while time.monotonic() < deadline:
            if ready():
                return
            for child in children:
                if child.process.poll() is not None:
                    raise SetupError(
                        f"{child.name} exited with status {child.process.returncode} while "
                        f"starting; its log ({child.log_path}) ends with:\n{child.tail()}"
                    )
            time.sleep(0.25)
        logs = ", ".join(str(child.log_path) for child in children)
        raise SetupError(
            f"{what} was not ready after {self.settings.ready_timeout_s:.0f}s; see {logs}"
        )

    def start(self) -> None:
        s = self.settings
        data_folders(s)
        require_free_ports(s, mongo=s.mongo_uri is None, smtp=s.smtp_url is None)
        require_rabbitmq(s.amqp_url)
        mysql_url = provision_mysql(s)
        jwt_secret = kept_secret(s.data_dir / "secrets" / "jwt_secret")

        mongo_uri = s.mongo_uri
        if mongo_uri is None:
            (s.data_dir / "mongo").mkdir(exist_ok=True)
            mongo = self.supervisor.start(
                "mongodb",
                [
                    str(self.bin / "nx-27017"),
                    "--data-dir",
                    str(s.data_dir / "mongo"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(s.ports.mongo),
                    "--log-file",
                    str(self._log("mongodb-server")),
                    "--pid-file",
                    str(s.data_dir / "mongo" / "nx-27017.pid"),
                ],
                env={},
                log_path=self._log("mongodb"),
            )
            self._wait("the embedded MongoDB server", lambda: port_answers(s.ports.mongo), [mongo])
            mongo_uri = f"mongodb://127.0.0.1:{s.ports.mongo}/mp3mesh"
            say(
                f"MongoDB (embedded nx-27017) on 127.0.0.1:{s.ports.mongo},"
                f" data in {s.data_dir / 'mongo'}"
            )

        smtp_url = s.smtp_url
        if smtp_url is None:
            sink = self.supervisor.start(
                "mail-sink",
                [
                    self.python,
                    "-m",
                    "meshkit.mailsink",
                    "--maildir",
                    str(s.maildir),
                    "--port",
                    str(s.ports.smtp),
                ],
                env={"PYTHONUNBUFFERED": "1"},
                log_path=self._log("mail-sink"),
            )
            self._wait("the local mail sink", lambda: port_answers(s.ports.smtp), [sink])
            smtp_url = f"smtp://127.0.0.1:{s.ports.smtp}"
            say(f"mail sink (aiosmtpd) on 127.0.0.1:{s.ports.smtp}, mail in {s.maildir}")

        services = [
            ("auth_svc", s.ports.auth, {"MYSQL_URL": mysql_url, "JWT_SECRET": jwt_secret}),
            ("converter_svc", s.ports.converter, {"MONGO_URI": mongo_uri, "AMQP_URL": s.amqp_url}),
            (
                "notifier_svc",
                s.ports.notifier,
                {
                    "MONGO_URI": mongo_uri,
                    "AMQP_URL": s.amqp_url,
                    "SMTP_URL": smtp_url,
                    "PUBLIC_BASE_URL": s.public_base_url,
                },
            ),
            (
                "gateway_svc",
                s.ports.gateway_grpc,
                {
                    "HTTP_PORT": str(s.ports.http),
                    "AUTH_TARGET": f"127.0.0.1:{s.ports.auth}",
                    "MONGO_URI": mongo_uri,
                    "AMQP_URL": s.amqp_url,
                    "PUBLIC_BASE_URL": s.public_base_url,
                    **({"MAX_UPLOAD_BYTES": s.max_upload_bytes} if s.max_upload_bytes else {}),
                },
            ),
        ]
        started: list[tuple[Child, int]] = []
        for module, port, extra in services:
            child = self.supervisor.start(
                module,
                [self.python, "-m", module],
                env={**self._common_env(module, port), **extra},
                log_path=self._log(module),
            )
            started.append((child, port))
        children = [child for child, _ in started]
        for child, port in started:
            self._wait(
                f"{child.name} (gRPC health on :{port})",
                functools.partial(_grpc_serving, port),
                children,
            )
        self._wait(
            "the gateway's /readyz", lambda: _http_ready(f"{s.public_base_url}/readyz"), children
        )
        s.run_file.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "base_url": s.public_base_url,
                    "grpc": {
                        "gateway": s.ports.gateway_grpc,
                        "auth": s.ports.auth,
                        "converter": s.ports.converter,
                        "notifier": s.ports.notifier,
                    },
                    "maildir": str(s.maildir),
                    "trace_file": None if s.otlp_endpoint else str(s.trace_file),
                    "logs": str(s.log_dir),
                },
                indent=2,
            )
        )

    def watch(self, stop: threading.Event) -> int:
        """Blocks until Ctrl-C/SIGTERM (0) or a child dies (1)."""
        while not stop.wait(0.5):
            dead = self.supervisor.exited()
            if dead:
                child = dead[0]
                say(
                    f"{child.name} exited unexpectedly (status {child.process.returncode}); "
                    f"its log ({child.log_path}) ends with:\n{child.tail()}"
                )
                return 1
        return 0


def walkthrough(settings: MeshSettings) -> str:
    base = settings.public_base_url
    p = settings.ports
    return f"""
mp3mesh is up.  REST: {base}
gRPC: gateway :{p.gateway_grpc}, auth :{p.auth}, converter :{p.converter}, notifier :{p.notifier}

  curl -s -X POST {base}/v1/users -H 'content-type: application/json' \\
       -d '{{"email":"me@example.com","password":"a long passphrase"}}'
  TOKEN=$(curl -s -X POST {base}/v1/login -u 'me@example.com:a long passphrase' \\
          | jq -r .access_token)
  curl -s -X POST "{base}/v1/videos" -H "authorization: Bearer $TOKEN" -F file=@video.mp4
  curl -s {base}/v1/jobs/JOB_ID -H "authorization: Bearer $TOKEN"
  curl -s -OJ {base}/v1/jobs/JOB_ID/mp3 -H "authorization: Bearer $TOKEN"

  grpcurl -plaintext 127.0.0.1:{p.gateway_grpc} list
  .venv/bin/mp3mesh convert video.mp4          # or: make demo

Mail:   {settings.maildir}/new
Traces: {settings.otlp_endpoint or settings.trace_file}
Logs:   {settings.log_dir}
Ctrl-C stops everything; data stays in {settings.data_dir}.
"""


def main() -> int:
    try:
        settings = MeshSettings.from_env(os.environ)
    except ConfigError as exc:
        say(str(exc))
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    runner = MeshRunner(settings)
    status = 0
    try:
        say(f"starting (data in {settings.data_dir}) ...")
        runner.start()
        if stop.is_set():
            return 0
        print(walkthrough(settings), flush=True)
        status = runner.watch(stop)
    except SetupError as exc:
        say(str(exc))
        status = 1
    finally:
        if runner.supervisor.children:
            say("stopping ...")
            runner.supervisor.stop_all()
            settings.run_file.unlink(missing_ok=True)
            say("stopped.")
    return status
