"""Programs whose leaking line allocates no object, only the storage of one that grows: a
list's item array, a dict's keys table, a bytearray's buffer... `memsleuth run` must name the
object that owns the block, and what keeps that object alive.

storage_app.py MODE SECONDS     MODE: list, lru, logging, dict, bytearray, set, array, deque,
                                odd (a list subclass grows among objects of unusual layouts)

Each marked line (`# LEAK-MODE`) allocates nothing but that storage: what it stores is made
before (CHUNK), or on a line of its own (the ints of `paced`).
"""

import array
import collections
import functools
import logging
import sys
import time

PER_TICK = 1000

ITEMS = []
TABLE = {}
SEEN = set()
BUFFER = bytearray()
CHUNK = b"x" * 64
SAMPLES = array.array("q")
QUEUE = collections.deque()


def paced(seconds):
    """Distinct ints, PER_TICK at a time, for `seconds`."""
    end = time.monotonic() + seconds
    n = 1000
    while time.monotonic() < end:
        for _ in range(PER_TICK):
            n += 1
            yield n
        time.sleep(0.01)


@functools.cache  # lru_cache(maxsize=None): unbounded
def lookup(n):
    return n


def grow_list(seconds):
    for _ in paced(seconds):
        ITEMS.append(CHUNK)  # LEAK-LIST


def grow_lru(seconds):
    for n in paced(seconds):
        lookup(n)  # LEAK-LRU


def grow_logging(seconds):
    for n in paced(seconds):
        # the leaking storage is logging's own: Manager.loggerDict's table
        logging.getLogger(f"app.{n}")


def grow_dict(seconds):
    for n in paced(seconds):
        TABLE[n] = None  # LEAK-DICT


def grow_bytearray(seconds):
    for _ in paced(seconds):
        BUFFER.extend(CHUNK)  # LEAK-BYTEARRAY


def grow_set(seconds):
    for n in paced(seconds):
        SEEN.add(n)  # LEAK-SET


def grow_array(seconds):
    for _ in paced(seconds):
        SAMPLES.append(7)  # LEAK-ARRAY


def grow_deque(seconds):
    for _ in paced(seconds):
        QUEUE.append(CHUNK)  # LEAK-DEQUE


class Items(list):
    """A list subclass (from 3.11 with a managed dict in front of it)."""


class Table(dict):
    pass


class Deque(collections.deque):
    pass


class Bag:
    def __init__(self):
        self.a = 1
        self.b = 2


class Owner:
    def __init__(self):
        self.items = Items()


# Python classes named like the C types whose private structs memsleuth reads
FakeDeque = type("collections.deque", (), {"__slots__": tuple("abcdefgh")})
FakeArray = type("array.array", (array.array,), {})

OWNER = Owner()
ODD = []


def grow_odd(seconds):
    bags = [Bag() for _ in range(100)]
    # split tables with values arrays of their own, and materialised instance dicts
    copies = [bag.__dict__.copy() for bag in bags]
    dicts = [bag.__dict__ for bag in bags[:50]]
    fake = FakeDeque()
    # where a deque keeps its length and its first and last blocks: objects, not blocks
    fake.a, fake.b, fake.c = ODD, bags, copies
    big_set = set(range(100))
    big_set.clear()  # a table of its own, empty
    ODD.extend(
        [
            [],
            {},
            set(),
            frozenset(range(20)),
            big_set,
            bytearray(),
            bytearray(b"abc"),
            Items(),
            Table(a=1),
            Deque(range(200)),
            Deque(),
            collections.deque(maxlen=3),
            fake,
            FakeArray("q", [1, 2]),
            array.array("b"),
            bags,
            copies,
            dicts,
            Table,
            Items,
            FakeDeque,
            FakeArray,
        ]
    )
    for _ in paced(seconds):
        OWNER.items.append(CHUNK)  # LEAK-ODD


if __name__ == "__main__":
    modes = {
        "list": grow_list,
        "lru": grow_lru,
        "logging": grow_logging,
        "dict": grow_dict,
        "bytearray": grow_bytearray,
        "set": grow_set,
        "array": grow_array,
        "deque": grow_deque,
        "odd": grow_odd,
    }
    modes[sys.argv[1]](float(sys.argv[2]))
