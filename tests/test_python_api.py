"""The Python front: memsleuth.memory() and memsleuth.watch() in real interpreters."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import pytest

import memsleuth


def test_memory_reads_this_process() -> None:
    m = memsleuth.memory()
    assert m.pid == os.getpid()
    assert m.rss is not None
    assert m.rss > 4 * 2**20
    assert m.vms is not None
    assert m.vms >= m.rss
    assert m.uss is not None
    assert 0 < m.uss <= m.rss
    assert m.pss is not None
    assert m.uss <= m.pss <= m.rss
    assert m.peak is not None
    assert m.peak >= m.rss
    assert m.swap is not None
    assert set(m.as_dict()) == {"rss", "vms", "uss", "pss", "swap", "peak"}
    assert "MiB" in repr(m)


def test_memory_follows_real_allocations() -> None:
    before = memsleuth.memory(full=False)
    assert before.uss is None
    assert before.pss is None
    block = b"\x01" * (64 * 2**20)
    after = memsleuth.memory()
    assert after.rss is not None
    assert before.rss is not None
    assert after.rss - before.rss >= 60 * 2**20
    assert after.uss is not None
    assert after.uss >= 60 * 2**20
    assert after.peak is not None
    assert after.peak >= after.rss
    del block


def test_memory_of_another_process_and_of_a_dead_one() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        m = memsleuth.memory(child.pid)
        assert m.pid == child.pid
        assert m.rss is not None
        assert 0 < m.rss < 64 * 2**20
    finally:
        child.kill()
        child.wait()
    with pytest.raises(memsleuth.ProcessError, match=f"no process with PID {child.pid}"):
        memsleuth.memory(child.pid)
    assert issubclass(memsleuth.ProcessError, memsleuth.MemsleuthError)


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_watch_finds_a_leak_per_iteration(tmp_path: Path) -> None:
    capture = tmp_path / "api.msl"
    proc = run_python(f"""
        import time, memsleuth
        kept = []
        with memsleuth.watch({str(capture)!r}, interval=0.02) as w:
            for i in range(150):
                kept.append(bytes([i % 250 + 1]) * 262144)
                w.mark()
                time.sleep(0.02)
        assert not w.running
        print(w.samples)
    """)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 50
    report = memsleuth.summary(capture)
    assert report["verdict"]["kind"] == "growing"
    assert report["marks"] == 150
    assert report["per_iteration"] == pytest.approx(262144, rel=0.2)
    assert report["end"]["reason"] == "stopped"
    assert report["python_version"] == ".".join(map(str, sys.version_info[:3]))


def test_watch_survives_a_fork_inside_the_block(tmp_path: Path) -> None:
    capture = tmp_path / "fork.msl"
    proc = run_python(f"""
        import os, sys, time, memsleuth
        with memsleuth.watch({str(capture)!r}, interval=0.01) as w:
            time.sleep(0.2)
            pid = os.fork()
            if pid == 0:
                # the child leaves the block normally: its __exit__ must not touch the
                # parent's capture or join a thread it does not have
                junk = [b"x" * 100000 for _ in range(50)]
                time.sleep(0.2)
                sys.exit(0)
            time.sleep(0.4)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0, status
        print(w.samples)
    """)
    assert proc.returncode == 0, proc.stderr
    report = memsleuth.summary(capture)
    assert not report["end"]["cut_short"]
    assert report["end"]["damage"] is None
    assert report["end"]["samples"] == int(proc.stdout)
    assert len(report["processes"]) == 2  # the forked child was followed as a descendant


def test_watch_host_killed_leaves_a_readable_capture(tmp_path: Path) -> None:
    capture = tmp_path / "killed.msl"
    proc = run_python(f"""
        import os, signal, time, memsleuth
        kept = []
        w = memsleuth.watch({str(capture)!r}, interval=0.02).start()
        for i in range(120):
            kept.append(bytes([i % 250 + 1]) * 262144)
            time.sleep(0.02)
        time.sleep(1.1)  # let the recorder's once-a-second flush happen
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert proc.returncode == -9
    report = memsleuth.summary(capture)
    assert report["end"]["cut_short"]
    assert report["end"]["reason"] == "cut_short"
    assert report["verdict"]["kind"] == "growing"
    assert report["end"]["samples"] > 50


def test_watch_objects_and_threads_are_released(tmp_path: Path) -> None:
    threads_before = len(os.listdir("/proc/self/task"))
    w = memsleuth.watch(tmp_path / "r.msl", interval=0.01)
    with w:
        assert w.running
        assert len(os.listdir("/proc/self/task")) == threads_before + 1
    assert not w.running
    assert len(os.listdir("/proc/self/task")) == threads_before
    ref = weakref.ref(w)
    del w
    gc.collect()
    assert ref() is None


def test_watch_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval"):
        memsleuth.watch(tmp_path / "x.msl", interval=0).start()
    with pytest.raises(memsleuth.CaptureError, match="No such file or directory"):
        memsleuth.watch(tmp_path / "missing" / "x.msl").start()
    (tmp_path / "junk.msl").write_bytes(b"junk junk junk junk")
    with pytest.raises(memsleuth.CaptureError, match="not a memsleuth capture"):
        memsleuth.summary(tmp_path / "junk.msl")


HOSTILE = Path(__file__).resolve().parent / "fixtures" / "hostile"


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("bad-checksum.msl", "capture is corrupt at byte 153"),
        ("garbage-chunk-marker.msl", "capture is corrupt at byte 153"),
        ("record-length-huge.msl", "capture is corrupt at byte 166"),
    ],
)
def test_summary_of_a_damaged_capture_without_samples_blames_the_damage(
    name: str, damage: str
) -> None:
    """The samples came after the damage: the damage is the reason, at its byte, as
    `memsleuth report summary` says it; not "no memory samples", which points at how the
    capture was recorded."""
    path = HOSTILE / name
    with pytest.raises(memsleuth.CaptureError) as caught:
        memsleuth.summary(path)
    said = str(caught.value)
    assert said.startswith(
        f"{path}: the capture is damaged before any memory samples could be read: {damage}"
    ), said
    assert "no memory samples" not in said


def test_summary_errors_name_the_path_once(tmp_path: Path) -> None:
    directory = tmp_path / "d.msl"
    directory.mkdir()
    for path, words in (
        (directory, "is not a regular file (a directory)"),
        (tmp_path / "missing.msl", "No such file or directory"),
    ):
        with pytest.raises(memsleuth.CaptureError) as caught:
            memsleuth.summary(path)
        said = str(caught.value)
        assert said.startswith(f"{path}"), said
        assert said.count(str(path)) == 1, said
        assert words in said, said
        assert "os error" not in said, said


def test_import_is_cheap_and_starts_nothing() -> None:
    proc = run_python("""
        import os, sys
        before = len(os.listdir('/proc/self/task'))
        import memsleuth
        assert len(os.listdir('/proc/self/task')) == before
        assert 'memsleuth._native' in sys.modules
    """)
    assert proc.returncode == 0, proc.stderr
