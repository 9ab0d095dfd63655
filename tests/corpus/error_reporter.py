"""Import of sensor readings from fixed-width text batches.

Malformed records are skipped; the exception of each rejected record is kept so that the import
summary can show the most recent failures with their stack.
"""

import random
import struct

BATCHES = 220
RECORDS_PER_BATCH = 220

_recent_failures = []


class RecordError(ValueError):
    pass


def decode_record(raw):
    window = bytearray(raw) * 6
    header, count = struct.unpack_from(">HH", window, 0)
    if header != 0xCAFE:
        raise RecordError(f"bad header {header:#06x}")
    values = struct.unpack_from(f">{count}f", window, 4)
    if any(v != v for v in values):
        raise RecordError("nan in readings")
    return sum(values) / count


def import_batch(records):
    good = []
    for raw in records:
        try:
            good.append(decode_record(raw))
        except RecordError as exc:
            _recent_failures.append(exc)
    return good


def make_record(rng):
    header = 0xCAFE if rng.random() > 0.08 else rng.randrange(65536)
    count = 300
    values = [rng.uniform(-40.0, 60.0) for _ in range(count)]
    if rng.random() < 0.02:
        values[rng.randrange(count)] = float("nan")
    return struct.pack(f">HH{count}f", header, count, *values)


def main():
    rng = random.Random(5)
    accepted = 0
    mean = 0.0
    for _ in range(BATCHES):
        good = import_batch(make_record(rng) for _ in range(RECORDS_PER_BATCH))
        accepted += len(good)
        mean += sum(good)
    mean /= max(1, accepted)
    print(f"accepted {accepted} records, mean {mean:.3f}, {len(_recent_failures)} rejected")


if __name__ == "__main__":
    main()
