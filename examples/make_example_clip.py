"""Render a short example clip to try `visage generate` on: a ball crossing a street scene, 8 s, 25 fps.

No free real-world clip ships with the project, so this draws one with PyAV: an orange ball moves from
right to left over a striped background, so the camera direction you pass decides where its sound sits.

    python examples/make_example_clip.py examples/example_clip.mp4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import numpy as np

WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 25, 8.0


def frame_at(t: float) -> np.ndarray:
    """[H, W, 3] uint8: sky, a road with moving stripes, and a ball crossing from right to left."""
    y = np.arange(HEIGHT)[:, None]
    x = np.arange(WIDTH)[None, :]
    img = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    img[:] = (120, 170, 230)  # sky
    road = y > HEIGHT * 0.6
    img[road[:, 0]] = (70, 70, 75)
    stripes = road & (((x + int(200 * t)) // 40) % 2 == 0) & (np.abs(y - HEIGHT * 0.8) < 4)
    img[stripes] = (240, 240, 240)
    cx = WIDTH * (0.9 - 0.8 * t / SECONDS)
    cy = HEIGHT * 0.55 + 20 * np.sin(2 * np.pi * t)
    ball = (x - cx) ** 2 + (y - cy) ** 2 < 30**2
    img[ball] = (250, 140, 30)
    return img


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("output", type=Path, help="video file to write (.mp4)")
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    args = parser.parse_args(argv)
    if args.output.exists() and not args.force:
        print(f"{args.output} exists; pass --force to replace it", file=sys.stderr)
        return 1
    tmp = args.output.with_name(f".{args.output.name}.part{args.output.suffix}")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(int(SECONDS * FPS)):
            frame = av.VideoFrame.from_ndarray(frame_at(i / FPS), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    tmp.replace(args.output)
    print(f"wrote {args.output} ({SECONDS:.0f} s, {WIDTH}x{HEIGHT}, {FPS} fps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
