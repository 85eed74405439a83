"""A small typed client for the gateway's REST API (also used by `make demo`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

TERMINAL_STATES = {"JOB_STATE_DONE", "JOB_STATE_FAILED"}
UPLOAD_PIECE = 256 * 1024


class ApiError(Exception):
    """A non-2xx answer; carries the HTTP status and the API's JSON error message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Token:
    access_token: str
    expires_at: str


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        message = str(response.json().get("message", response.text))
    except ValueError:
        message = response.text or response.reason_phrase
    raise ApiError(response.status_code, message)


class ApiClient:
    def __init__(self, base_url: str, token: str | None = None, *, timeout_s: float = 30) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s)
        self.base_url = base_url

    def close(self) -> None:
        self._http.close()

    def signup(self, email: str, password: str) -> dict[str, Any]:
        response = self._http.post("/v1/users", json={"email": email, "password": password})
        _raise_for(response)
        return dict(response.json())

    def login(self, email: str, password: str) -> Token:
        response = self._http.post("/v1/login", json={"email": email, "password": password})
        _raise_for(response)
        body = response.json()
        return Token(body["access_token"], body.get("expires_at", ""))

    def upload(
        self,
        path: Path,
        *,
        bitrate_kbps: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Streams the file as a raw body: constant memory whatever its size."""
        total = path.stat().st_size

        def pieces() -> Iterator[bytes]:
            sent = 0
            with path.open("rb") as handle:
                while piece := handle.read(UPLOAD_PIECE):
                    sent += len(piece)
                    if progress:
                        progress(sent, total)
                    yield piece

        params: dict[str, str | int] = {"filename": path.name}
        if bitrate_kbps:
            params["bitrate_kbps"] = bitrate_kbps
        response = self._http.post(
            "/v1/videos",
            params=params,
            content=pieces(),
            headers={"content-type": "application/octet-stream", "content-length": str(total)},
            timeout=httpx.Timeout(30, write=None),
        )
        _raise_for(response)
        return dict(response.json())

    def job(self, job_id: str) -> dict[str, Any]:
        response = self._http.get(f"/v1/jobs/{job_id}")
        _raise_for(response)
        return dict(response.json())

    def jobs(self, page_size: int = 20, page_token: str = "") -> dict[str, Any]:
        params: dict[str, str | int] = {"page_size": page_size}
        if page_token:
            params["page_token"] = page_token
        response = self._http.get("/v1/jobs", params=params)
        _raise_for(response)
        return dict(response.json())

    def wait(self, job_id: str, *, timeout_s: float = 600, poll_s: float = 0.5) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if job.get("state") in TERMINAL_STATES:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.get('state')} after {timeout_s}s")
            time.sleep(poll_s)

    def download(self, job_id: str, target: Path) -> Path:
        """Streams the MP3 to `target` (a file, or a folder to use the server's name)."""
        with self._http.stream("GET", f"/v1/jobs/{job_id}/mp3") as response:
            if not response.is_success:
                response.read()
                _raise_for(response)
            if target.is_dir():
                target = target / _filename_from(response.headers.get("content-disposition", ""))
            partial = target.with_name(target.name + ".part")
            with partial.open("wb") as out:
                for piece in response.iter_bytes():
                    out.write(piece)
            partial.replace(target)
        return target


def _filename_from(disposition: str) -> str:
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "filename*" and value.lower().startswith("utf-8''"):
            from urllib.parse import unquote

            return Path(unquote(value[7:])).name or "audio.mp3"
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "filename":
            return Path(value.strip('"')).name or "audio.mp3"
    return "audio.mp3"
