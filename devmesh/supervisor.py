"""Starts the mesh's processes, watches them, and stops them in order.

Children run in their own sessions so Ctrl-C reaches only the runner, which then stops
them front to back (gateway first, auth last) with SIGTERM, the way Kubernetes would, and
SIGKILLs what has not exited after the grace period. Each child also asks the kernel to
SIGTERM it if the runner dies, so nothing is left behind even after `kill -9` of `make up`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Supervisor:
    children: list[Child] = field(default_factory=list)

    def start(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str], log_path: Path
    ) -> Child:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                list(argv),
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # only prctl: safe between fork and exec
            )
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def exited(self) -> list[Child]:
        return [child for child in self.children if child.process.poll() is not None]

    def stop_all(self, grace_s: float = 30.0) -> None:
        """SIGTERM newest first, each given time to drain, then SIGKILL leftovers."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
                try:
                    child.process.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    child.process.kill()
        deadline = time.monotonic() + 5
        for child in self.children:
            if child.process.poll() is None:
                child.process.kill()
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
