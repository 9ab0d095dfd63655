"""Memory workloads with known shapes, driven by the tests.

usage: workload.py KIND SECONDS [REPORT_JSON]

KIND is one of: leak, plateau, sawtooth, stable. When REPORT_JSON is given, the program writes the
true leak rate it produced (bytes allocated and kept per second) there.
"""

from __future__ import annotations

import collections
import json
import sys
import time

CHUNK = 256 * 1024
PERIOD = 0.02


def chunk(i: int) -> bytes:
    # bytes filled with a non-zero pattern: every page is really touched, so RSS sees it
    return bytes([i % 251 + 1]) * CHUNK


def leak(seconds: float) -> dict[str, float]:
    kept = []
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < seconds:
        kept.append(chunk(i))
        i += 1
        time.sleep(PERIOD)
    elapsed = time.perf_counter() - start
    return {"rate": len(kept) * CHUNK / elapsed, "bytes": len(kept) * CHUNK}


def plateau(seconds: float) -> dict[str, float]:
    cache: collections.OrderedDict[int, bytes] = collections.OrderedDict()
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < seconds:
        cache[i] = chunk(i)
        if len(cache) > 120:  # bounded: fills to ~30 MiB in ~2.4 s, then stays there
            cache.popitem(last=False)
        i += 1
        time.sleep(PERIOD)
    return {"rate": 0.0}


def sawtooth(seconds: float) -> dict[str, float]:
    start = time.perf_counter()
    batch: list[bytes] = []
    i = 0
    while time.perf_counter() - start < seconds:
        batch.append(chunk(i))
        if len(batch) >= 60:  # ~15 MiB, then released
            batch.clear()
        i += 1
        time.sleep(PERIOD / 2)
    return {"rate": 0.0}


def stable(seconds: float) -> dict[str, float]:
    start = time.perf_counter()
    total = 0
    while time.perf_counter() - start < seconds:
        total += sum(len(str(x)) for x in range(2000))
        time.sleep(PERIOD)
    return {"rate": 0.0}


def main() -> None:
    kind, seconds = sys.argv[1], float(sys.argv[2])
    result = {"leak": leak, "plateau": plateau, "sawtooth": sawtooth, "stable": stable}[kind](
        seconds
    )
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main()
