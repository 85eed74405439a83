"""`make demo`: one conversion end to end against the running local mesh.

Generates a short sample video, signs a demo user up, uploads, waits for the job, downloads
the MP3 and shows the email the notifier sent, reading the addresses `make up` recorded.
"""

from __future__ import annotations

import email
import json
import mailbox
import os
import secrets
import sys
import time
from pathlib import Path

from devmesh.samples import make_sample_video
from devmesh.settings import MeshSettings
from mp3mesh_cli.client import ApiClient, ApiError


def _find_mail(
    maildir: Path, recipient: str, timeout_s: float = 30
) -> email.message.Message | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for message in mailbox.Maildir(maildir, create=False):
            if recipient in str(message.get("To", "")):
                return message
        time.sleep(0.5)
    return None


def _plain_text(message: email.message.Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""


def main() -> int:
    settings = MeshSettings.from_env(os.environ)
    if not settings.run_file.exists():
        print(
            "mp3mesh: the mesh is not running: start it with `make up` (in another terminal)",
            file=sys.stderr,
        )
        return 1
    run = json.loads(settings.run_file.read_text())
    demo_dir = settings.data_dir / "demo"
    sample = make_sample_video(demo_dir / "sample.mp4")
    user = f"demo+{secrets.token_hex(3)}@example.com"
    password = secrets.token_urlsafe(16)
    try:
        ApiClient(run["base_url"]).signup(user, password)
        token = ApiClient(run["base_url"]).login(user, password)
        client = ApiClient(run["base_url"], token.access_token)
        accepted = client.upload(sample)
        print(f"uploaded {sample} as {user}: job {accepted['job_id']}")
        job = client.wait(accepted["job_id"], timeout_s=120)
        print(json.dumps(job, indent=2))
        if job["state"] != "JOB_STATE_DONE":
            print("mp3mesh: the job failed (see above)", file=sys.stderr)
            return 1
        mp3 = client.download(job["job_id"], demo_dir / "sample.mp3")
        print(f"MP3: {mp3} ({mp3.stat().st_size} bytes)")
    except ApiError as exc:
        print(f"mp3mesh: the API answered {exc}", file=sys.stderr)
        return 1
    message = _find_mail(Path(run["maildir"]), user)
    if message is None:
        print(f"no email for {user} in {run['maildir']} yet", file=sys.stderr)
        return 1
    print(f"\nEmail to {message['To']}: {message['Subject']}\n{_plain_text(message)}")
    return 0
