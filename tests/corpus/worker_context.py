"""Parallel parsing of overlapping log shards with a thread pool.

Log shippers send overlapping windows of each service's log; the shards of one source are
parsed in order on a pool thread. A worker keeps its own parser state in a thread-local: the
compiled pattern and the normalised lines it has already emitted, to drop the repeats that
overlapping windows bring.
"""

import re
import threading
from concurrent.futures import ThreadPoolExecutor

SOURCES = 48
SHARDS_PER_SOURCE = 260
LINES_PER_SHARD = 120
STEP = 12
WORKERS = 4

_worker_state = threading.local()

PATTERN = r"(?P<ts>\d+) (?P<level>[A-Z]+) (?P<svc>[a-z]+)\[(?P<pid>\d+)\]: (?P<msg>.*)"


def state():
    if not hasattr(_worker_state, "pattern"):
        _worker_state.pattern = re.compile(PATTERN)
        _worker_state.emitted = {}
    return _worker_state


def make_shard(source, number):
    for i in range(LINES_PER_SHARD):
        seq = number * STEP + i
        level = ("INFO", "WARN", "ERROR", "TRACE")[seq % 4]
        service = f"svc{'abcdefgh'[source % 8]}[{source * 1000 + seq % 977}]"
        message = f"request {seq * 7919 % 100003} took {seq % 313} ms"
        yield f"{1700000000 + seq} {level} {service}: {message}"


def parse_source(source):
    counts = {}
    for number in range(SHARDS_PER_SOURCE):
        parse_shard(source, number, counts)
    return counts


def parse_shard(source, number, counts):
    local = state()
    for line in make_shard(source, number):
        match = local.pattern.match(line)
        if match is None:
            continue
        ts, level, svc, pid, msg = match.groups()
        key = hash((svc, pid, ts))
        if key in local.emitted:
            continue
        local.emitted[key] = f"{ts}|{level:<5}|{svc}|{pid:>6}|{msg:<48}|{line}"
        counts[level] = counts.get(level, 0) + 1


def main():
    totals = {}
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for counts in pool.map(parse_source, range(SOURCES)):
            for level, n in counts.items():
                totals[level] = totals.get(level, 0) + n
    print(", ".join(f"{level}={n}" for level, n in sorted(totals.items())))


if __name__ == "__main__":
    main()
