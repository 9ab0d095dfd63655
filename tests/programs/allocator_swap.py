"""Swaps Python's allocators while memsleuth tracks: tracemalloc started, snapshotted and
stopped (argument `tracemalloc`), or the hookswap test extension installed and removed
(`hookswap`), many times, each round running freshly compiled code so that memsleuth has new
code positions to name all along. With `tracker` the rounds run inside Tracker sessions of this
process instead of under `memsleuth run`."""

import sys
import tracemalloc

ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 30


def swap_in() -> None:
    if sys.argv[1] == "tracemalloc":
        tracemalloc.start(5)
    else:
        import hookswap

        hookswap.install()


def swap_out() -> None:
    if sys.argv[1] == "tracemalloc":
        tracemalloc.take_snapshot()
        tracemalloc.stop()
    else:
        import hookswap

        hookswap.remove()


def one_round(i: int) -> list:
    swap_in()
    kept = [bytearray(1000) for _ in range(300)]
    fresh = {}
    source = f"def f{i}():\n    return [bytes(10) for _ in range(200)]\n"
    exec(compile(source, f"gen{i}.py", "exec"), fresh)
    kept.append(fresh[f"f{i}"]())
    swap_out()
    kept.append([bytes(10) for _ in range(2000)])
    return kept


if len(sys.argv) > 2 and sys.argv[2] == "tracker":
    import memsleuth

    for session in range(ROUNDS):
        with memsleuth.Tracker(f"{sys.argv[4]}-{session}.msl", census=0.01):
            for i in range(5):
                one_round(session * 10 + i)
else:
    KEEP = [one_round(i) for i in range(ROUNDS)]
print("rounds done")
