"""IP geolocation for an ad server.

Requests are geolocated by their /24 prefix; resolving a prefix walks a (simulated) radix
table and builds a location record with the candidate cities, which is cached.
"""

import functools
import random

REQUESTS = 160000
PREFIXES = 40000


@functools.lru_cache(maxsize=1024)
def resolve(prefix):
    a, b, c = prefix
    seed = (a * 65536 + b * 256 + c) * 2654435761 % 2**32
    rng = random.Random(seed)
    cities = [
        (f"city-{rng.randrange(50000)}", rng.uniform(-90, 90), rng.uniform(-180, 180), rng.random())
        for _ in range(24)
    ]
    cities.sort(key=lambda city: -city[3])
    return {
        "prefix": f"{a}.{b}.{c}.0/24",
        "country": ("DE", "FR", "US", "BR", "JP")[seed % 5],
        "cities": cities,
    }


def choose_campaign(location, rng):
    best = location["cities"][0]
    weight = best[3] * (1.0 + abs(best[1]) / 90.0)
    return int(weight * 1000) % 37 if rng.random() < 0.9 else None


def main():
    rng = random.Random(12)
    hot = [(rng.randrange(1, 224), rng.randrange(256), rng.randrange(256)) for _ in range(800)]
    served = 0
    for _ in range(REQUESTS):
        if rng.random() < 0.7:
            prefix = rng.choice(hot)
        else:
            n = rng.randrange(PREFIXES)
            prefix = (1 + n % 223, (n // 223) % 256, n % 256)
        if choose_campaign(resolve(prefix), rng) is not None:
            served += 1
    info = resolve.cache_info()
    print(f"served {served} ads, cache hits {info.hits}, misses {info.misses}")


if __name__ == "__main__":
    main()
