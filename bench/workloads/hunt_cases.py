"""The cases of bench/bench_hunt.py: small functions as a test suite would call them."""

import functools

_SESSIONS = []


class Session:
    def __init__(self, n):
        self.n = n
        self.headers = {"id": str(n), "kind": "bench"}


def case_leaks():
    """Keeps one small session per call: a leak of a few hundred bytes a call."""
    _SESSIONS.append(Session(len(_SESSIONS)))


def case_clean():
    """Makes sessions and drops them."""
    made = [Session(i) for i in range(200)]
    assert len(made) == 200


@functools.cache
def _table(n):
    return [str(i) * 4 for i in range(n)]


def case_cache():
    """Fills a cache on its first call, then reads it."""
    assert len(_table(20_000)) == 20_000


_BATCH = []


def case_batch():
    """Grows a batch and clears it: churn, no leak."""
    for i in range(2_000):
        _BATCH.append({"i": i})
    _BATCH.clear()
