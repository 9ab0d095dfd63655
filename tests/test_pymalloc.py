"""memsleuth._native.pymalloc_stats() on a real interpreter: the figures follow real allocations."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from memsleuth import _native

N = 200_000
# object() is 16 bytes and not tracked by gc (no gc header): one block of the 16-byte class
# each; a debug build's allocator adds 32 bytes of guards around every block
SIZE = 48 if hasattr(sys, "gettotalrefcount") else 16


def class_of(stats: dict[str, Any], size: int) -> dict[str, int]:
    for c in stats["classes"]:
        if c["size"] == size:
            return dict(c)
    return {"size": size, "pools": 0, "blocks_in_use": 0, "blocks_free": 0}


def test_the_figures_hang_together() -> None:
    s = _native.pymalloc_stats()
    assert s["active"] is True
    assert s["arena_size"] in (256 * 1024, 1024 * 1024)
    assert s["pool_size"] in (4 * 1024, 16 * 1024)
    assert s["arenas_now"] >= 1
    assert s["arenas_highwater"] >= s["arenas_now"]
    assert s["arenas_allocated_total"] == s["arenas_now"] + s["arenas_reclaimed"]
    parts = (
        s["bytes_in_use"]
        + s["bytes_free_blocks"]
        + s["unused_pools"] * s["pool_size"]
        + s["bytes_pool_headers"]
        + s["bytes_quantization"]
        + s["bytes_arena_alignment"]
    )
    assert parts == s["arenas_now"] * s["arena_size"]
    assert sum(c["blocks_in_use"] * c["size"] for c in s["classes"]) == s["bytes_in_use"]
    sizes = [c["size"] for c in s["classes"]]
    assert sizes == sorted(sizes)
    assert all(0 < size <= 512 for size in sizes)
    assert s["allocated_blocks"] > 0
    if hasattr(sys, "gettotalrefcount"):
        assert isinstance(s["total_refcount"], int)
    else:
        assert s["total_refcount"] is None


@pytest.mark.skipif(
    not hasattr(sys, "gettotalrefcount"), reason="sys.gettotalrefcount exists on debug builds only"
)
def test_total_refcount_follows_references_on_a_debug_build() -> None:
    target = object()
    before = _native.pymalloc_stats()["total_refcount"]
    refs = [target] * 50_000
    during = _native.pymalloc_stats()["total_refcount"]
    assert during - before >= 50_000
    del refs
    after = _native.pymalloc_stats()["total_refcount"]
    assert during - after >= 49_000


def test_blocks_follow_small_objects() -> None:
    gc.collect()
    before = _native.pymalloc_stats()
    objs = [object() for _ in range(N)]
    during = _native.pymalloc_stats()
    grew = class_of(during, SIZE)["blocks_in_use"] - class_of(before, SIZE)["blocks_in_use"]
    assert N <= grew < N + 5_000, grew
    assert during["allocated_blocks"] - before["allocated_blocks"] >= N
    assert during["bytes_in_use"] - before["bytes_in_use"] >= N * SIZE
    del objs
    gc.collect()
    after = _native.pymalloc_stats()
    shrank = class_of(during, SIZE)["blocks_in_use"] - class_of(after, SIZE)["blocks_in_use"]
    assert shrank >= N - 1_000, shrank
    assert during["allocated_blocks"] - after["allocated_blocks"] >= N - 1_000
    # the bytes in use fell with them (where the freed blocks went depends on what other
    # code allocated since: free blocks, emptied pools, or arenas given back)
    assert during["bytes_in_use"] - after["bytes_in_use"] >= 0.95 * N * SIZE


def run_snippet(code: str, **env: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_without_pymalloc_the_figures_are_zero() -> None:
    s = run_snippet(
        """
        import json
        from memsleuth import _native
        print(json.dumps(_native.pymalloc_stats()))
        """,
        PYTHONMALLOC="malloc",
    )
    assert s["active"] is False
    assert s["classes"] == []
    assert s["arena_size"] == 0
    assert s["arenas_now"] == 0
    assert s["bytes_in_use"] == 0
    # sys.getallocatedblocks() counts pymalloc's blocks: with it off there are none
    assert s["allocated_blocks"] == 0


@pytest.mark.parametrize("hook", ["tracemalloc", "memsleuth"])
def test_an_allocator_hook_does_not_hide_pymalloc(hook: str, tmp_path: Any) -> None:
    # CPython prints no statistics once the object allocator is wrapped (it checks that the
    # installed function is pymalloc's); the snapshot sees through the wrapper
    start = {
        "tracemalloc": "import tracemalloc; tracemalloc.start()",
        "memsleuth": f"_native.track_start({str(tmp_path / 'hooked.msl')!r})",
    }[hook]
    s = run_snippet(
        f"""
        import json
        from memsleuth import _native
        {start}
        before = _native.pymalloc_stats()
        objs = [object() for _ in range({N})]
        during = _native.pymalloc_stats()
        print(json.dumps({{"before": before, "during": during}}))
        """
    )
    assert s["before"]["active"] is True
    assert s["during"]["arenas_now"] >= 1
    assert s["during"]["allocated_blocks"] - s["before"]["allocated_blocks"] >= N
