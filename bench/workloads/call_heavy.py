"""Call-heavy: deep recursion and many small function calls, few allocations (small ints only,
which CPython caches, apart from fib's larger sums)."""

import os
import sys
import time

SCALE = float(os.environ.get("MEMSLEUTH_BENCH_SCALE", "1"))
REPEAT = max(1, round(50 * SCALE))


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


# a chain 900 deep, built once, so recursing down it allocates nothing (a counter above 256
# would allocate an int per call)
CHAIN = None
for _ in range(900):
    CHAIN = (CHAIN,)


def depth(node):
    return 0 if node is None else depth(node[0])


def clamp(x, lo, hi):
    return lo if x < lo else hi if x > hi else x


def work():
    sys.setrecursionlimit(10_000)
    acc = 0
    for _ in range(REPEAT):
        acc ^= fib(25) & 0xFF
        for _ in range(100):
            acc ^= depth(CHAIN)  # deep stacks
        for a in range(200):
            for b in range(250):
                acc ^= clamp(a ^ b, 10, 200)
    return acc


if __name__ == "__main__":
    t = time.perf_counter()
    work()
    print(f"ELAPSED {time.perf_counter() - t:.6f}")
