"""Telemetry uplink: packs sensor frames for a narrow radio link.

Frames are quantised, delta-coded and run-length encoded by a small C codec (_wirecodec); the
uplink keeps per-channel statistics of the encoded sizes and verifies a sample of frames by
decoding them again.
"""

import random
import statistics

import _wirecodec

CHANNELS = 8
FRAMES = 1850
SAMPLES = 16384


def quantise(rng, channel, frame_no):
    level = 128 + (frame_no * (channel + 1)) % 64
    return bytes((level + rng.randrange(-3, 4)) & 0xFF for _ in range(SAMPLES // 16)) * 16


def delta_code(samples):
    previous = 0
    out = bytearray(len(samples))
    for i, value in enumerate(samples):
        out[i] = (value - previous) & 0xFF
        previous = value
    return bytes(out)


def main():
    rng = random.Random(21)
    sizes = {channel: [] for channel in range(CHANNELS)}
    verified = 0
    for frame_no in range(FRAMES):
        channel = frame_no % CHANNELS
        raw = quantise(rng, channel, frame_no)
        packed = _wirecodec.encode(raw)
        sizes[channel].append(len(packed))
        coded = delta_code(raw)
        if frame_no % 10 == 0 and _wirecodec.decode(_wirecodec.encode(coded)) == coded:
            verified += 1
    means = ", ".join(f"{c}:{statistics.mean(s):.0f}" for c, s in sizes.items())
    print(f"sent {FRAMES} frames, verified {verified}, mean sizes {means}")


if __name__ == "__main__":
    main()
