"""H.264 mp4 files that play in browsers (yuv420p, faststart), written and read back through
imageio-ffmpeg's bundled ffmpeg."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .scratch import temp_file

CRF = 18  # visually near-lossless H.264


def mp4_bytes(frames: Sequence[np.ndarray], fps: int) -> bytes:
    """uint8 (H, W, 3) frames as an mp4 in memory; odd sizes are padded to even with white
    (yuv420p needs even sides), never rescaled."""
    import imageio_ffmpeg

    height, width = frames[0].shape[:2]
    padded_h, padded_w = height + height % 2, width + width % 2
    name = str(temp_file(suffix=".mp4"))
    try:
        writer = imageio_ffmpeg.write_frames(
            name,
            (padded_w, padded_h),
            fps=fps,
            codec="libx264",
            pix_fmt_out="yuv420p",
            macro_block_size=1,
            quality=None,
            output_params=["-crf", str(CRF), "-movflags", "+faststart"],
            ffmpeg_log_level="error",
        )
        writer.send(None)
        for frame in frames:
            canvas = np.full((padded_h, padded_w, 3), 255, dtype=np.uint8)
            canvas[:height, :width] = frame
            writer.send(canvas)
        writer.close()
        return Path(name).read_bytes()
    finally:
        Path(name).unlink(missing_ok=True)


def read_mp4(path: str | Path) -> tuple[np.ndarray, dict]:
    """Decode an mp4 back to (F, H, W, 3) uint8 frames, with ffmpeg's metadata."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(chunk, np.uint8).reshape(height, width, 3) for chunk in reader]
    return np.stack(frames), meta
