"""Feature-flag evaluation for a mobile backend.

The flag service publishes a new snapshot of all flags and targeting rules periodically; the
backend compiles each snapshot into lookup tables and swaps it in whole, dropping the old one.
"""

import hashlib
import random

REQUESTS = 1110000
REFRESH_EVERY = 370000
FLAGS = 300
SEGMENTS = 120

_snapshot = None


def compile_snapshot(version, rng):
    table = {}
    for flag in range(FLAGS):
        rules = [(f"segment-{s}", rng.random() < 0.3, rng.randrange(100)) for s in range(SEGMENTS)]
        table[f"flag-{flag}"] = {"version": version, "default": rng.random() < 0.5, "rules": rules}
    return {"version": version, "flags": table}


def evaluate(snapshot, flag, user):
    entry = snapshot["flags"][flag]
    digest = hashlib.md5(f"{flag}:{user}".encode()).hexdigest()
    bucket = int(digest[:4], 16) % 100
    _segment, enabled, rollout = entry["rules"][int(digest[4:8], 16) % SEGMENTS]
    if bucket < rollout:
        return enabled
    return entry["default"]


def main():
    global _snapshot
    rng = random.Random(8)
    enabled = 0
    for n in range(REQUESTS):
        if n % REFRESH_EVERY == 0:
            _snapshot = compile_snapshot(n // REFRESH_EVERY, rng)
        flag = f"flag-{rng.randrange(FLAGS)}"
        enabled += evaluate(_snapshot, flag, f"user-{rng.randrange(100000)}")
    print(f"{enabled} of {REQUESTS} evaluations enabled, snapshot v{_snapshot['version']}")


if __name__ == "__main__":
    main()
