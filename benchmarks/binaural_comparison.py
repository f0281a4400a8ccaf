"""The spherical head and YouTube's decoder side by side: ILD and ITD of a source swept around the head.

    python benchmarks/binaural_comparison.py [--sample-rate 48000] [--step 15] [--markdown]

Prints one row per azimuth (0..360°, elevation 0): broadband and high-band ILD (dB) and ITD (µs) for
each renderer, with Woodworth's sphere ITD as a reference (``visage.model.evaluation.binaural_comparison``
says how each is measured). Not a test and never an assertion; a few seconds on one core.
"""

from __future__ import annotations

import argparse

import numpy as np

from visage.model.delivery.binaural_preview import SPHERICAL_HEAD, YOUTUBE, load_decoder
from visage.model.evaluation.binaural_comparison import (
    front_back_db,
    noise_burst,
    sweep_cues,
    woodworth_itd_us,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-rate", type=int, default=48000)
    parser.add_argument("--step", type=float, default=15.0, help="azimuth step in degrees")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table")
    args = parser.parse_args()

    azimuths = np.arange(0.0, 360.0, args.step)
    burst = noise_burst(args.sample_rate)
    head_decoder = load_decoder(args.sample_rate, renderer=SPHERICAL_HEAD)
    youtube_decoder = load_decoder(args.sample_rate, renderer=YOUTUBE)
    head = sweep_cues(head_decoder, burst, azimuths)
    youtube = sweep_cues(youtube_decoder, burst, azimuths)
    header = (
        "azimuth °",
        "ILD head dB",
        "ILD YouTube dB",
        "ILD >1.5k head",
        "ILD >1.5k YouTube",
        "ITD head µs",
        "ITD YouTube µs",
        "ITD sphere µs",
    )
    rows = [
        (
            f"{h.azimuth_deg:g}",
            f"{h.ild_db:+.1f}",
            f"{y.ild_db:+.1f}",
            f"{h.ild_high_db:+.1f}",
            f"{y.ild_high_db:+.1f}",
            f"{h.itd_us:+.0f}",
            f"{y.itd_us:+.0f}",
            f"{woodworth_itd_us(h.azimuth_deg):+.0f}",
        )
        for h, y in zip(head, youtube, strict=True)
    ]
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---:|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        print("  ".join(f"{name:>17}" for name in header))
        for row in rows:
            print("  ".join(f"{cell:>17}" for cell in row))
    print(
        f"sample rate {args.sample_rate} Hz; max |ILD|: head {max(abs(c.ild_db) for c in head):.1f} dB, "
        f"YouTube {max(abs(c.ild_db) for c in youtube):.1f} dB; max |ITD|: head "
        f"{max(abs(c.itd_us) for c in head):.0f} µs, YouTube {max(abs(c.itd_us) for c in youtube):.0f} µs; "
        f"front/back above 4 kHz: head {front_back_db(head_decoder, burst):+.1f} dB, "
        f"YouTube {front_back_db(youtube_decoder, burst):+.1f} dB"
    )


if __name__ == "__main__":
    main()
