"""A large live heap for the object-census benchmark (bench/bench_objects.py): an in-memory user
store, as a web service might keep. ``build()`` fills the module-level ``CACHE`` (user id ->
``User``) and ``BY_EMAIL`` (email -> user id) and keeps them alive.

Each ``User`` holds about a dozen objects of its own: the instance, unique strings (name, email,
zip code), a large int id (shared with its ``CACHE`` key) and a float, a list of tags, a nested
address dict with a list of lines, a tuple of two timestamps and a set of roles; tags, cities,
streets and roles come from small shared pools. At scale 1 (``MEMSLEUTH_BENCH_SCALE``) there are
100,000 users: about 1.3 million live objects, half a million of them tracked by the gc.

``python objects_heap.py`` builds the heap and prints ``ELAPSED <seconds>``, as the other
workloads do.
"""

import os
import time

SCALE = float(os.environ.get("MEMSLEUTH_BENCH_SCALE", "1"))
USERS = max(1, round(100_000 * SCALE))

TAGS = [f"tag-{i}" for i in range(50)]
CITIES = ["Lisbon", "Oslo", "Quito", "Lagos", "Perth", "Osaka", "Leeds", "Tartu"]
STREETS = [f"{i} Main Street" for i in range(200)]
ROLES = ["reader", "writer", "admin", "billing", "support"]
EPOCH = 1_700_000_000

CACHE = {}  # user id -> User: what holds the heap
BY_EMAIL = {}  # email -> user id


class User:
    def __init__(self, uid, name, email, score, tags, address, stamps, roles):
        self.uid = uid
        self.name = name
        self.email = email
        self.score = score
        self.tags = tags
        self.address = address
        self.stamps = stamps
        self.roles = roles


def make_user(i):
    uid = 10_000_000 + i  # not a cached small int: one int object per user
    name = f"user {i:06d}"
    email = f"user{i}@example.org"
    tags = [TAGS[i % 50], TAGS[(i * 7) % 50]]
    address = {
        "city": CITIES[i % len(CITIES)],
        "zip": f"{i % 100_000:05d}-{i % 7}",
        "lines": [STREETS[i % 200]],
    }
    stamps = (EPOCH + i, EPOCH + 2 * i + 1)
    roles = {ROLES[i % 5], ROLES[(i // 5) % 5]}
    return User(uid, name, email, (i % 1000) / 10.0 + 0.05, tags, address, stamps, roles)


def build(n=USERS):
    """Fills ``CACHE`` with ``n`` users; returns the id of one in the middle of it."""
    for i in range(n):
        u = make_user(i)
        CACHE[u.uid] = u
        BY_EMAIL[u.email] = u.uid
    return 10_000_000 + n // 2


if __name__ == "__main__":
    t = time.perf_counter()
    build()
    print(f"{len(CACHE)} users")
    print(f"ELAPSED {time.perf_counter() - t:.6f}")
