"""The README, followed literally: `make up`, then curl and grpcurl against the running mesh.

Runs the mesh exactly as a newcomer does (`make up` in the repository), on ports and in a data
folder of the test's own, with its own MySQL database and RabbitMQ vhost, so it can run beside a
developer's mesh. Ctrl-C (SIGINT to the process group) must leave no process behind.
"""

from __future__ import annotations

import email
import json
import mailbox
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.media import audio_duration_s, ffprobe, shared_samples
from tests.fixtures.processes import REPO, VENV_BIN, free_port, grpcurl, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

PASSWORD = "correct horse battery staple"
EXPECTED_FAILURES = {
    "mp4parse__white.mp4": "FAILURE_REASON_NO_AUDIO",
    "file-type__fixture-corrupt.mkv": "FAILURE_REASON_CORRUPT_MEDIA",
}


@dataclass
class Mesh:
    process: subprocess.Popen[str]
    env: dict[str, str]
    data_dir: Path
    output: list[str]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.env['HTTP_PORT']}"

    def grpc_ports(self) -> dict[str, str]:
        return {
            name: self.env[key]
            for name, key in (
                ("gateway", "GATEWAY_GRPC_PORT"),
                ("auth", "AUTH_GRPC_PORT"),
                ("converter", "CONVERTER_GRPC_PORT"),
                ("notifier", "NOTIFIER_GRPC_PORT"),
            )
        }


def start_mesh(env: dict[str, str]) -> Mesh:
    process = subprocess.Popen(
        ["make", "up"],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + 240
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if "mp3mesh is up" in line:
            return Mesh(process, env, Path(env["MP3MESH_DATA_DIR"]), output)
    process.kill()
    raise AssertionError("make up did not come up:\n" + "".join(output))


def stop_mesh(mesh: Mesh) -> int:
    os.killpg(mesh.process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    return mesh.process.wait(timeout=120)


def processes_of(data_dir: Path) -> list[int]:
    """Processes whose environment names this mesh's data folder (all it started)."""
    marker = f"MP3MESH_DATA_DIR={data_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", *args], capture_output=True, text=True, timeout=120, check=False
    )


def curl_json(*args: str) -> tuple[int, dict[str, object]]:
    result = curl("-w", "\n%{http_code}", *args)
    body, _, status = result.stdout.rpartition("\n")
    return int(status), (json.loads(body) if body.strip() else {})


@pytest.fixture
def mesh_env(tmp_path: Path, mysql_url: str, rabbit_url: str) -> dict[str, str]:
    return {
        "MP3MESH_DATA_DIR": str(tmp_path / "data"),
        "HTTP_PORT": str(free_port()),
        "GATEWAY_GRPC_PORT": str(free_port()),
        "AUTH_GRPC_PORT": str(free_port()),
        "CONVERTER_GRPC_PORT": str(free_port()),
        "NOTIFIER_GRPC_PORT": str(free_port()),
        "MONGO_PORT": str(free_port()),
        "SMTP_PORT": str(free_port()),
        "MYSQL_URL": mysql_url,
        "AMQP_URL": rabbit_url,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
    }


@pytest.fixture
def mesh(mesh_env: dict[str, str]) -> Iterator[Mesh]:
    running = start_mesh(mesh_env)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            stop_mesh(running)


def login(mesh: Mesh, email_address: str) -> str:
    status, body = curl_json(
        "-X", "POST", f"{mesh.base_url}/v1/login", "-u", f"{email_address}:{PASSWORD}"
    )
    assert status == 200, body
    return str(body["access_token"])


def wait_job(mesh: Mesh, token: str, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status, job = curl_json(
            f"{mesh.base_url}/v1/jobs/{job_id}", "-H", f"authorization: Bearer {token}"
        )
        assert status == 200, job
        if job["state"] in ("JOB_STATE_DONE", "JOB_STATE_FAILED"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish")


def mails_to(maildir: Path, address: str) -> list[email.message.Message]:
    return [m for m in mailbox.Maildir(maildir, create=False) if address in str(m["To"])]


def test_readme_walkthrough_on_a_mesh_started_with_make_up(mesh: Mesh, tmp_path: Path) -> None:
    user = "newcomer@example.com"
    status, created = curl_json(
        "-X",
        "POST",
        f"{mesh.base_url}/v1/users",
        "-H",
        "content-type: application/json",
        "-d",
        json.dumps({"email": user, "password": PASSWORD}),
    )
    assert status == 201, created
    token = login(mesh, user)
    auth = f"authorization: Bearer {token}"

    jobs: dict[str, str] = {}
    for sample in shared_samples():
        status, accepted = curl_json(
            "-X", "POST", f"{mesh.base_url}/v1/videos", "-H", auth, "-F", f"file=@{sample.path}"
        )
        assert status == 202, (sample.path.name, accepted)
        jobs[sample.path.name] = str(accepted["job_id"])
    # The README's raw-body form, with curl's default Content-Type.
    first_sample = shared_samples()[0].path
    status, raw = curl_json(
        "-X",
        "POST",
        f"{mesh.base_url}/v1/videos?filename=raw-{first_sample.name}&bitrate_kbps=128",
        "-H",
        auth,
        "--data-binary",
        f"@{first_sample}",
    )
    assert status == 202, raw
    raw_job = wait_job(mesh, token, str(raw["job_id"]))
    assert raw_job["state"] == "JOB_STATE_DONE"
    assert raw_job["bitrate_kbps"] == 128
    jobs["raw"] = str(raw["job_id"])

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for sample in shared_samples():
        job = wait_job(mesh, token, jobs[sample.path.name])
        if sample.path.name in EXPECTED_FAILURES:
            assert job["state"] == "JOB_STATE_FAILED"
            assert job["failure"]["reason"] == EXPECTED_FAILURES[sample.path.name]  # type: ignore[index]
            continue
        assert job["state"] == "JOB_STATE_DONE", job
        result = curl(
            "-f",
            "-OJ",
            "--output-dir",
            str(downloads),
            "-H",
            auth,
            f"{mesh.base_url}/v1/jobs/{job['job_id']}/mp3",
        )
        assert result.returncode == 0, result.stderr
        mp3 = downloads / f"{sample.path.stem}.mp3"
        assert [s["codec_name"] for s in ffprobe(mp3)["streams"]] == ["mp3"]  # type: ignore[index]
        assert abs(audio_duration_s(mp3) - audio_duration_s(sample.path)) <= 0.05

    wait_until(
        lambda: len(mails_to(mesh.data_dir / "mail", user)) >= len(jobs),
        timeout_s=60,
        what="one email per job",
    )
    mails = mails_to(mesh.data_dir / "mail", user)
    assert len(mails) == len(jobs)
    subjects = " ".join(str(m["Subject"]) for m in mails)
    assert "go-mp4__sample" in subjects

    for name, port in mesh.grpc_ports().items():
        listed = grpcurl("-plaintext", f"127.0.0.1:{port}", "list")
        assert listed.returncode == 0, (name, listed.stderr)
        assert "grpc.health.v1.Health" in listed.stdout

    # One upload, one trace across all four services.
    first = jobs["go-mp4__sample.mp4"]
    trace = subprocess.run(
        [
            str(VENV_BIN / "mp3mesh"),
            "--url",
            mesh.base_url,
            "trace",
            first,
            "--spans",
            str(mesh.data_dir / "traces" / "spans.jsonl"),
            "--jaeger",
            str(tmp_path / "j.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg")},
    )
    assert trace.returncode != 0  # not logged in: the CLI says so instead of guessing
    assert "not logged in" in trace.stderr + trace.stdout


def test_one_trace_holds_spans_of_all_four_services(mesh: Mesh, tmp_path: Path) -> None:
    user = "tracer@example.com"
    curl_json(
        "-X",
        "POST",
        f"{mesh.base_url}/v1/users",
        "-H",
        "content-type: application/json",
        "-d",
        json.dumps({"email": user, "password": PASSWORD}),
    )
    config_home = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV_BIN / "mp3mesh"), "--url", mesh.base_url, *args],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            env={**os.environ, **config_home},
        )

    assert cli("login", user).returncode == 0
    sample = tmp_path / "clip.mp4"
    sample.write_bytes(shared_samples()[0].path.read_bytes())
    converted = cli("convert", str(sample))
    assert converted.returncode == 0, converted.stdout + converted.stderr
    assert (tmp_path / "clip.mp3").stat().st_size > 0
    listed = cli("jobs")
    job_id = listed.stdout.split()[0]
    spans_file = mesh.data_dir / "traces" / "spans.jsonl"

    def services_in_trace() -> set[str]:
        _, job = curl_json(
            f"{mesh.base_url}/v1/jobs/{job_id}", "-H", f"authorization: Bearer {login(mesh, user)}"
        )
        trace_id = job["trace_id"]
        spans = [json.loads(line) for line in spans_file.read_text().splitlines()]
        return {s["service"] for s in spans if s["trace_id"] == trace_id}

    wait_until(
        lambda: services_in_trace() >= {"gateway_svc", "auth_svc", "converter_svc", "notifier_svc"},
        timeout_s=60,
        what="spans of all four services in the job's trace",
    )
    shown = cli("trace", job_id, "--spans", str(spans_file), "--jaeger", str(tmp_path / "j.json"))
    assert shown.returncode == 0, shown.stderr
    for service in ("gateway_svc", "auth_svc", "converter_svc", "notifier_svc"):
        assert service in shown.stdout
    jaeger = json.loads((tmp_path / "j.json").read_text())
    assert {p["serviceName"] for p in jaeger["data"][0]["processes"].values()} >= {
        "gateway_svc",
        "notifier_svc",
    }


def test_ctrl_c_stops_everything_and_a_restart_keeps_users_and_jobs(
    mesh_env: dict[str, str], tmp_path: Path
) -> None:
    first = start_mesh(mesh_env)
    base = first.base_url
    curl_json(
        "-X",
        "POST",
        f"{base}/v1/users",
        "-H",
        "content-type: application/json",
        "-d",
        json.dumps({"email": "keeper@example.com", "password": PASSWORD}),
    )
    token = login(first, "keeper@example.com")
    status, accepted = curl_json(
        "-X",
        "POST",
        f"{base}/v1/videos",
        "-H",
        f"authorization: Bearer {token}",
        "-F",
        f"file=@{shared_samples()[0].path}",
    )
    assert status == 202
    wait_job(first, token, str(accepted["job_id"]))

    second_try = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "devmesh", "up"],
        cwd=REPO,
        env={**os.environ, **mesh_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second_try.returncode == 1
    assert re.search(r"port \d+ .* is already in use", second_try.stderr), second_try.stderr
    assert "Traceback" not in second_try.stderr

    # make re-raises the SIGINT it got (-2) once its recipe has exited; devmesh itself exits 0
    assert stop_mesh(first) in (0, 2, -signal.SIGINT)
    wait_until(
        lambda: processes_of(first.data_dir) == [], timeout_s=30, what="no process of the mesh left"
    )

    again = start_mesh(mesh_env)
    try:
        token = login(again, "keeper@example.com")
        status, job = curl_json(
            f"{base}/v1/jobs/{accepted['job_id']}", "-H", f"authorization: Bearer {token}"
        )
        assert status == 200
        assert job["state"] == "JOB_STATE_DONE"
        result = curl(
            "-f",
            "-o",
            str(tmp_path / "kept.mp3"),
            "-H",
            f"authorization: Bearer {token}",
            f"{base}/v1/jobs/{job['job_id']}/mp3",
        )
        assert result.returncode == 0
    finally:
        stop_mesh(again)
    wait_until(lambda: processes_of(again.data_dir) == [], timeout_s=30, what="clean stop")
