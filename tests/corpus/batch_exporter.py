"""Clickstream exporter.

Click events are decoded from the collector's wire format and buffered; every 50,000 events
the buffer is written out as one compressed batch and emptied.
"""

import random
import zlib

EVENTS = 1230000
BATCH_SIZE = 50000

PAGES = [f"/catalog/{c}/{p}" for c in ("shoes", "bags", "coats", "hats") for p in range(50)]

_buffer = []
_shipped = {"batches": 0, "bytes": 0}


def decode(rng, seq):
    return (
        seq,
        rng.choice(PAGES),
        f"sess-{rng.randrange(20000):05d}",
        rng.randrange(100, 5000),
        rng.random() < 0.02,
    )


def ship():
    payload = "\n".join(
        f"{seq},{page},{session},{dwell},{int(bounce)}"
        for seq, page, session, dwell, bounce in _buffer
    ).encode()
    _shipped["bytes"] += len(zlib.compress(payload, 1))
    _shipped["batches"] += 1
    _buffer.clear()


def main():
    rng = random.Random(1)
    for seq in range(EVENTS):
        _buffer.append(decode(rng, seq))
        if len(_buffer) >= BATCH_SIZE:
            ship()
    print(
        f"shipped {_shipped['batches']} batches, {_shipped['bytes']} bytes, {len(_buffer)} buffered"
    )


if __name__ == "__main__":
    main()
