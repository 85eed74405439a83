"""Inputs for the transcode tests: generated once per session with ffmpeg's lavfi sources."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.media import generate_video, tool

Generate = Callable[[str, list[str]], Path]


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("transcode-media")


@pytest.fixture(scope="session")
def make_media(media_dir: Path) -> Generate:
    """``make_media(name, ffmpeg_args)`` -> path; each name is generated once."""

    def make(name: str, args: list[str]) -> Path:
        path = media_dir / name
        if not path.exists():
            subprocess.run(
                [tool("ffmpeg"), "-v", "error", "-y", *args, str(path)], check=True, timeout=300
            )
        return path

    return make


@pytest.fixture(scope="session")
def ten_minute_mp4(media_dir: Path) -> Path:
    return generate_video(media_dir / "ten-minutes.mp4", seconds=600, moov_at_end=False)


@pytest.fixture(scope="session")
def noisy_tones_m4a(make_media: Generate) -> Path:
    """70 s of a tone per channel over pink noise: long enough to be encoded in
    segments, and hard enough that separate encoders do not converge bit for bit."""
    return make_media(
        "noisy-tones-70s.m4a",
        [
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=70",
            "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=70",
            "-f", "lavfi", "-i",
            "anoisesrc=color=pink:sample_rate=48000:amplitude=0.15:duration=70:seed=7",
            "-filter_complex",
            "[2:a]asplit[n1][n2];[0:a][n1]amix=inputs=2:normalize=0[l];"
            "[1:a][n2]amix=inputs=2:normalize=0[r];"
            "[l][r]join=inputs=2:channel_layout=stereo[a]",
            "-map", "[a]", "-c:a", "aac", "-b:a", "192k",
        ],
    )  # fmt: skip
