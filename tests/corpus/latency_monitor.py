"""Latency monitor for a service mesh sidecar.

Every proxied call produces a sample (route, status, upstream, latency); the monitor keeps the
most recent samples in a ring buffer and computes percentiles over it for the health endpoint.
"""

import random
from collections import deque

WINDOW = 120000
CALLS = 1650000

ROUTES = [f"/svc{s}/v{v}/{r}" for s in range(12) for v in (1, 2) for r in ("get", "list", "put")]

_samples = deque(maxlen=WINDOW)


def observe(rng, call_no):
    route = ROUTES[call_no % len(ROUTES)]
    latency = rng.lognormvariate(3.0, 0.6)
    status = 200 if rng.random() > 0.01 else 503
    _samples.append((route, status, f"10.1.{call_no % 64}.{call_no % 251}:8080", round(latency, 3)))


def percentiles():
    latencies = sorted(sample[3] for sample in _samples)
    n = len(latencies)
    return {p: latencies[min(n - 1, int(n * p / 100))] for p in (50, 90, 99)}


def main():
    rng = random.Random(40)
    reports = []
    for call_no in range(CALLS):
        observe(rng, call_no)
        if call_no % 100000 == 99999:
            reports.append(percentiles())
    print(f"{CALLS} calls, last percentiles {reports[-1]}, window {len(_samples)}")


if __name__ == "__main__":
    main()
