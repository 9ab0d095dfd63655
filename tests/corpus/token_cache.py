"""Access-token introspection cache for an API gateway.

Introspecting a token at the identity provider is slow, so the gateway keeps the answers of
the most recently used tokens, up to a fixed capacity, evicting the least recently used.
"""

import hashlib
import random
from collections import OrderedDict

CAPACITY = 5000
REQUESTS = 320000


class IntrospectionCache:
    def __init__(self, capacity):
        self.capacity = capacity
        self.entries = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, token, introspect):
        entry = self.entries.get(token)
        if entry is not None:
            self.entries.move_to_end(token)
            self.hits += 1
            return entry
        self.misses += 1
        entry = introspect(token)
        self.entries[token] = entry
        if len(self.entries) > self.capacity:
            self.entries.popitem(last=False)
        return entry


def introspect(token):
    digest = hashlib.sha256(token.encode()).hexdigest()
    scopes = [f"scope:{digest[i : i + 6]}" for i in range(0, 48, 4)]
    return {
        "sub": f"user-{digest[:10]}",
        "scopes": scopes,
        "claims": {f"c{i}": digest[i : i + 12] for i in range(16)},
    }


def authorise(entry, needed):
    return any(scope.endswith(needed) for scope in entry["scopes"])


CACHE = IntrospectionCache(CAPACITY)


def main():
    rng = random.Random(55)
    population = [f"tok_{rng.getrandbits(96):024x}" for _ in range(40000)]
    allowed = 0
    for _ in range(REQUESTS):
        token = population[min(int(rng.expovariate(1 / 4000)), len(population) - 1)]
        entry = CACHE.get(token, introspect)
        allowed += authorise(entry, token[-2:])
    print(
        f"{allowed} allowed, hits {CACHE.hits}, misses {CACHE.misses}, cached {len(CACHE.entries)}"
    )


if __name__ == "__main__":
    main()
