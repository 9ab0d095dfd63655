"""Native-heavy: numpy arrays of 1 KiB to 4 MiB allocated, filled and freed, plus C malloc/free
pairs through ctypes, so most memory traffic goes through the C allocator, not Python's."""

import ctypes
import math
import os
import random
import time
from collections import deque

import numpy as np

SCALE = float(os.environ.get("MEMSLEUTH_BENCH_SCALE", "1"))
COUNT = max(1, round(50000 * SCALE))
MALLOCS = 8  # C malloc/free pairs per round
LO, HI = math.log(1 << 10), math.log(4 << 20)

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.restype = None
libc.free.argtypes = [ctypes.c_void_p]


def work():
    rng = random.Random(42)
    window = deque(maxlen=16)  # a few arrays stay alive at a time, as in a real pipeline
    total = 0
    for i in range(COUNT):
        size = int(math.exp(rng.uniform(LO, HI)))  # log-uniform: most small, some large
        if i % 2:
            arr = np.ones(size, dtype=np.uint8)  # calloc-like, then filled
        else:
            arr = np.empty(size // 8, dtype=np.float64)
            arr[::512] = 1.0  # touch every page
        if rng.random() < 0.3:
            derived = arr[: arr.size // 2].copy()  # a temporary, freed at once
            total += derived.nbytes
            del derived
        if rng.random() < 0.1:
            window.append(arr)  # kept for a while
        total += arr.nbytes
        del arr
        for _ in range(MALLOCS):
            n = rng.randrange(16, 8192)
            p = libc.malloc(n)
            ctypes.memset(p, 0, n)
            libc.free(p)
            total += n
    return total


if __name__ == "__main__":
    t = time.perf_counter()
    work()
    elapsed = time.perf_counter() - t
    # what a native tracker must see at least: the malloc and free calls made through ctypes
    print(f"CTYPES_CALLS {COUNT * MALLOCS * 2}")
    print(f"ELAPSED {elapsed:.6f}")
