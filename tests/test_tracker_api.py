"""The `python` instrument from Python: memsleuth.Tracker on a real interpreter."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import weakref
from pathlib import Path

import pytest

import memsleuth
from memsleuth import _native


def test_tracker_block_records_and_finishes(tmp_path: Path) -> None:
    out = tmp_path / "t.msl"
    kept = []
    with memsleuth.Tracker(out) as t:
        assert t.running
        assert _native.tracking()
        for _ in range(1000):
            kept.append(bytearray(2048))
    assert not t.running
    assert not _native.tracking()
    assert t.stats is not None
    assert t.stats["allocs"] >= 2000
    assert t.stats["dropped"] == 0
    assert t.stats["frames"] > 0
    assert out.stat().st_size > 0


def test_one_tracker_at_a_time(tmp_path: Path) -> None:
    with (
        memsleuth.Tracker(tmp_path / "a.msl"),
        pytest.raises(memsleuth.MemsleuthError, match="already tracking"),
    ):
        memsleuth.Tracker(tmp_path / "b.msl").start()
    # and the next session works
    with memsleuth.Tracker(tmp_path / "c.msl") as t:
        x = [object() for _ in range(100)]
    assert t.stats is not None
    assert t.stats["allocs"] >= 100
    del x


def test_unwritable_capture_is_a_capture_error(tmp_path: Path) -> None:
    with pytest.raises(memsleuth.CaptureError, match="cannot create the capture"):
        memsleuth.Tracker(tmp_path / "missing-dir" / "t.msl").start()
    assert not _native.tracking()


def test_bad_arguments_are_value_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="stack_depth"):
        memsleuth.Tracker(tmp_path / "t.msl", stack_depth=0).start()
    with pytest.raises(ValueError, match="not a size"):
        memsleuth.Tracker(tmp_path / "t.msl", sample="lots")
    assert memsleuth.Tracker(tmp_path / "t.msl", sample="512KiB").sample_bytes == 512 * 1024


@pytest.mark.parametrize("value", [1e99, 1e20, float("inf"), float("nan")])
def test_absurd_intervals_are_value_errors_not_panics(tmp_path: Path, value: float) -> None:
    # a Rust panic surfaces as PanicException, which `except Exception` does not catch
    for start in (
        lambda: memsleuth.Tracker(tmp_path / "t.msl", census=value).start(),
        lambda: memsleuth.Tracker(tmp_path / "t.msl", rss_interval=value).start(),
        lambda: memsleuth.watch(tmp_path / "w.msl", interval=value).start(),
    ):
        with pytest.raises(ValueError, match=r"a year|positive"):
            start()
    assert not _native.tracking()


def test_tracker_releases_its_own_objects(tmp_path: Path) -> None:
    """The code objects the tracker holds while recording are released when it stops, and its
    threads are gone: a leak detector must not leak."""
    threads_before = threading.active_count()
    tasks_before = len(os.listdir("/proc/self/task"))
    namespace: dict[str, object] = {}
    # a code object created and dropped while tracking: the tracker must not keep it alive
    exec(
        compile("def made():\n    return [bytearray(64) for _ in range(50)]\n", "<gen>", "exec"),
        namespace,
    )
    made = namespace.pop("made")
    code_ref = weakref.ref(made.__code__)  # type: ignore[attr-defined]
    with memsleuth.Tracker(tmp_path / "t.msl") as t:
        made()  # type: ignore[operator]
    assert t.stats is not None
    assert t.stats["code_objects_held"] > 0
    del made
    gc.collect()
    assert code_ref() is None, "the tracker kept a code object alive after it stopped"
    assert threading.active_count() == threads_before
    assert len(os.listdir("/proc/self/task")) == tasks_before


def test_importing_memsleuth_costs_nothing_until_tracking(tmp_path: Path) -> None:
    """A process that imports memsleuth but never tracks runs no thread and no hook."""
    script = textwrap.dedent(
        """
        import os, tracemalloc
        tasks = len(os.listdir("/proc/self/task"))
        import memsleuth
        from memsleuth import _native
        assert not _native.tracking()
        assert len(os.listdir("/proc/self/task")) == tasks, "a thread was started on import"
        # tracemalloc installs its own hooks and sees our allocator as 'previous': with nothing
        # of ours installed it still traces everything
        tracemalloc.start()
        x = [bytearray(100) for _ in range(100)]
        assert tracemalloc.get_traced_memory()[0] > 10000
        print("ok")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


# forking a process with the recorder thread running is the point of this test (3.12+ warns)
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_fork_inside_a_tracker_leaves_the_parent_capture_intact(tmp_path: Path) -> None:
    out = tmp_path / "t.msl"
    with memsleuth.Tracker(out) as t:
        kept = [bytearray(1000) for _ in range(500)]
        pid = os.fork()
        if pid == 0:
            # the child allocates, leaves the block (stopping a tracker that is not its own)
            junk = [bytearray(4096) for _ in range(2000)]
            t.stop()
            os._exit(0 if not _native.tracking() and junk else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        kept += [bytearray(1000) for _ in range(500)]
    assert t.stats is not None
    assert t.stats["allocs"] >= 2000
    assert t.stats["dropped"] == 0
    del kept


def test_threads_are_tracked(tmp_path: Path) -> None:
    out = tmp_path / "t.msl"
    kept: list[bytearray] = []

    def work() -> None:
        for _ in range(2000):
            kept.append(bytearray(512))

    with memsleuth.Tracker(out) as t:
        ts = [threading.Thread(target=work) for _ in range(4)]
        for th in ts:
            th.start()
        for th in ts:
            th.join()
    assert t.stats is not None
    assert t.stats["allocs"] >= 8000 * 2
    assert t.stats["dropped"] == 0
