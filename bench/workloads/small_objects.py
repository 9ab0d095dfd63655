"""Allocation-heavy: many small lists, dicts, tuples and strings created and dropped."""

import os
import time

SCALE = float(os.environ.get("MEMSLEUTH_BENCH_SCALE", "1"))
ROUNDS = max(1, round(130 * SCALE))


def make_rows(n):
    return [
        {"id": i, "name": "row-" + str(i), "tags": (i, i + 1, "x"), "vals": [i, i * 2, i * 3]}
        for i in range(n)
    ]


def work():
    total = 0
    for _ in range(ROUNDS):
        rows = make_rows(10_000)
        names = [r["name"].upper() for r in rows if r["id"] % 3]
        joined = ",".join(names)
        pairs = {r["name"]: r["tags"] for r in rows}
        total += len(joined) + len(pairs)
        del rows, names, joined, pairs
    return total


if __name__ == "__main__":
    t = time.perf_counter()
    work()
    print(f"ELAPSED {time.perf_counter() - t:.6f}")
