"""Talk to a running `visage serve` daemon from plain Python: find it, submit a clip, follow progress.

visage serve &                                   # or: visage serve --model fake (no GPU, a test tone)
python examples/submit_over_osc.py /abs/path/clip.mp4 --yaw 30 --start 2 --end 7 -o /abs/path/out.wav
"""

from __future__ import annotations

import argparse
from pathlib import Path

from visage.bridge.client import JobFailed, VisageClient, find_daemon


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("video", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--start", type=float, default=0.0)
    parser.add_argument("--end", type=float, default=None)
    parser.add_argument("--yaw", type=float, default=0.0, help="degrees, positive = left")
    parser.add_argument("--pitch", type=float, default=0.0, help="degrees, positive = up")
    parser.add_argument(
        "--daemon", default="auto", help="auto (endpoint file, ZeroConf, default port) or HOST:PORT"
    )
    args = parser.parse_args(argv)

    address = find_daemon(args.daemon)  # raises DaemonUnavailable with a hint when none answers
    with VisageClient(address) as client:
        pong = client.ping()
        print(f"daemon: model {pong.model_id} on {pong.device}, {pong.queued} queued")
        try:
            done = client.generate(
                args.video,
                yaw=args.yaw,
                pitch=args.pitch,
                start=args.start,
                end=args.end,
                output=args.output,
                progress=lambda p: print(f"{p.stage:>10} {p.fraction:4.0%}"),
            )
        except JobFailed as failed:
            print(f"failed: {failed.code}: {failed.message}")
            return 1
    print(f"wrote {done.output} (metadata {done.metadata}{', from the cache' if done.cached else ''})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
