"""Combinatorics service for a puzzle site.

Answers questions about Fibonacci numbers and binomial coefficients for n up to a fixed limit;
results are memoised by n, since the same small set of n comes up again and again.
"""

import functools
import random

FIB_LIMIT = 4000
ROW_LIMIT = 600
QUESTIONS = 2700000


@functools.cache
def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


_rows = {}


def binomial_row(n):
    row = _rows.get(n)
    if row is None:
        if n == 0:
            row = (1,)
        else:
            previous = binomial_row(n - 1)
            row = tuple(a + b for a, b in zip((0, *previous), (*previous, 0)))
        _rows[n] = row
    return row


def answer(rng):
    kind = rng.random()
    if kind < 0.5:
        n = rng.randrange(FIB_LIMIT)
        return fib(n) % 1_000_000_007
    n = rng.randrange(ROW_LIMIT)
    k = rng.randrange(n + 1)
    return binomial_row(n)[k] % 1_000_000_007


def main():
    for n in range(0, FIB_LIMIT, 200):
        fib(n)
    rng = random.Random(19)
    checksum = 0
    for _ in range(QUESTIONS):
        checksum = (checksum * 31 + answer(rng)) % 1_000_000_007
    print(f"answered {QUESTIONS} questions, checksum {checksum}")
    print(f"{fib.cache_info().currsize} Fibonacci numbers, {len(_rows)} binomial rows")


if __name__ == "__main__":
    main()
