"""Generates a small real video (H.264 + AAC in MP4) with PyAV: the demo needs no files."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def make_sample_video(path: Path, *, seconds: float = 4.0, rate: int = 44100) -> Path:
    """A colour-cycling 160x120 picture over a 440 Hz tone, `seconds` long."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "stereo"  # type: ignore[union-attr]
        for index in range(int(seconds * 25)):
            shade = int(127 + 120 * math.sin(index / 10))
            picture = np.full((120, 160, 3), (shade, 80, 255 - shade), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        samples_per_frame = 1024
        total = int(seconds * rate)
        for start in range(0, total, samples_per_frame):
            count = min(samples_per_frame, total - start)
            t = (np.arange(start, start + count) / rate).astype(np.float32)
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            chunk = av.AudioFrame.from_ndarray(
                np.vstack([tone, tone]), format="fltp", layout="stereo"
            )
            chunk.sample_rate = rate
            chunk.pts = start
            chunk.time_base = Fraction(1, rate)
            container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))
    return path
