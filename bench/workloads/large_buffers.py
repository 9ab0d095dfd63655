"""Large buffers: bytearray/bytes of 64 KiB to 4 MiB allocated, touched and freed."""

import os
import random
import time
from collections import deque

SCALE = float(os.environ.get("MEMSLEUTH_BENCH_SCALE", "1"))
COUNT = max(1, round(3600 * SCALE))
PAGE = 4096


def work():
    rng = random.Random(42)
    window = deque(maxlen=8)  # a few buffers stay alive at a time, as in a real pipeline
    total = 0
    for _ in range(COUNT):
        size = rng.randrange(64 << 10, 4 << 20)
        buf = bytearray(size)
        buf[::PAGE] = b"x" * len(range(0, size, PAGE))  # touch every page
        if rng.random() < 0.25:
            frozen = bytes(buf[: size // 2])  # a copy, freed at once
            total += len(frozen)
            del frozen
        window.append(buf)
        total += size
    return total


if __name__ == "__main__":
    t = time.perf_counter()
    work()
    print(f"ELAPSED {time.perf_counter() - t:.6f}")
