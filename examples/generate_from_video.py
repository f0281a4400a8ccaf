"""The Python API in a few lines: one clip range + a camera direction -> an AmbiX WAV.

python examples/generate_from_video.py examples/example_clip.mp4 out.wav --yaw 30
python examples/generate_from_video.py clip.mp4 out.wav --model tiny-random   # offline check (noise)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from visage.model.features.direction import CameraDirection
from visage.model.inference.pipeline import GenerationRequest, VideoToAmbisonics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("video", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--start", type=float, default=0.0)
    parser.add_argument("--end", type=float, default=None)
    parser.add_argument("--yaw", type=float, default=0.0, help="degrees, positive = left")
    parser.add_argument("--pitch", type=float, default=0.0, help="degrees, positive = up")
    parser.add_argument("--model", default="jaeyeonkim99/visage", help="checkpoint, or tiny-random")
    args = parser.parse_args(argv)

    pipeline = VideoToAmbisonics.load(args.model)  # ViSAGe + CLIP + DAC, on the GPU if there is one
    request = GenerationRequest(
        args.video, args.start, args.end, CameraDirection(args.yaw, args.pitch), seed=0, output=args.output
    )
    (result,) = pipeline.generate([request], progress=lambda i, f, stage: print(f"{stage:>9} {f:4.0%}"))
    if isinstance(result, Exception):
        raise SystemExit(f"error: {result}")
    samples = result.audio.shape[1]
    print(f"wrote {result.written.path}: {samples} samples x 4 channels at {result.sample_rate} Hz")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
