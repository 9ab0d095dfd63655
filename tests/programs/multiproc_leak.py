"""A parent that stays flat while its multiprocessing child leaks."""

from __future__ import annotations

import multiprocessing
import sys
import time


def leaky_child(seconds: float) -> None:
    kept = []
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < seconds:
        kept.append(bytes([i % 200 + 1]) * (256 * 1024))
        i += 1
        time.sleep(0.02)


def main() -> None:
    seconds = float(sys.argv[1])
    ctx = multiprocessing.get_context(sys.argv[2] if len(sys.argv) > 2 else "spawn")
    child = ctx.Process(target=leaky_child, args=(seconds,))
    child.start()
    start = time.perf_counter()
    while child.is_alive() and time.perf_counter() - start < seconds + 10:
        sum(range(1000))
        time.sleep(0.02)
    child.join()


if __name__ == "__main__":
    main()
