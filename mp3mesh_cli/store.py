"""Where the CLI keeps its login: the user's config folder, readable only by them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mp3mesh"


@dataclass(frozen=True)
class Session:
    base_url: str
    email: str
    access_token: str
    expires_at: str


def save(session: Session, folder: Path | None = None) -> Path:
    folder = folder or config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "session.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(session.__dict__, handle)
    os.chmod(path, 0o600)  # also when the file existed with looser bits
    return path


def load(folder: Path | None = None) -> Session | None:
    path = (folder or config_dir()) / "session.json"
    try:
        return Session(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
