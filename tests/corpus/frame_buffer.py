"""Frame assembly for a video-over-UDP receiver.

Packets of a frame arrive out of order; each frame is assembled in a native scratch buffer
(malloc'd through ctypes so that it can be handed to a C decoder), checksummed, and the
decoded luminance statistics are kept.
"""

import ctypes
import random
import zlib

FRAME_BYTES = 64 * 1024
PACKET = 64
FRAMES = 1500

_libc = ctypes.CDLL(None)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.free.argtypes = [ctypes.c_void_p]


def receive_packets(rng, frame_no):
    order = list(range(FRAME_BYTES // PACKET))
    rng.shuffle(order)
    for index in order:
        payload = bytes([(frame_no + index) & 0xFF]) * PACKET
        yield index, zlib.crc32(payload), payload


def assemble(rng, frame_no):
    scratch = _libc.malloc(FRAME_BYTES)
    ctypes.memset(scratch, 0, FRAME_BYTES)
    for index, crc, payload in receive_packets(rng, frame_no):
        if zlib.crc32(payload) != crc:
            continue
        ctypes.memmove(scratch + index * PACKET, payload, len(payload))
    frame = ctypes.string_at(scratch, FRAME_BYTES)
    return frame


def luminance(frame):
    sample = frame[::257]
    return sum(sample) / len(sample)


def main():
    rng = random.Random(3)
    crc = 0
    levels = []
    for frame_no in range(FRAMES):
        frame = assemble(rng, frame_no)
        crc = zlib.crc32(frame, crc)
        levels.append(luminance(frame))
    print(f"assembled {FRAMES} frames, crc {crc:08x}, mean level {sum(levels) / len(levels):.1f}")


if __name__ == "__main__":
    main()
