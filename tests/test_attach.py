"""`memsleuth attach PID`: entering a running interpreter with gdb, recording, and leaving it as
it was. Each target is a real program on this interpreter that answers commands (over stdin
or a command file, depending on how it waits) and reports its own state from the inside."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pytest

import cext
from conftest import memsleuth
from test_verdict import line_of, write

pytestmark = pytest.mark.skipif(
    shutil.which("gdb") is None, reason="gdb is not installed (dev/test installs it with apt)"
)

# MODE is how the program waits between commands:
# - read: blocked in read() on stdin, its only thread;
# - sleep: asleep in time.sleep, looking for a command file every 50 ms;
# - busy: allocating and freeing all the time, looking for the command file between rounds;
# - threads: as busy, with three worker threads allocating too.
# Commands: `leak SECONDS` (keeps 4 KiB per millisecond at the line marked LEAK), `hold SECONDS`
# (sleeps in C holding the GIL), `cleak SECONDS LIBRARY` (C memory, from an extension and from
# a library loaded then), `malloc` (where an extension's malloc calls go), `track FILE` and
# `untrack` (the program's own memsleuth.Tracker),
# `state`
# (prints what memsleuth could have left behind, as JSON), `exit` (exits with status 7).
TARGET = """
    import ctypes
    import gc
    import json
    import os
    import sys
    import time

    MODE = sys.argv[1]
    COMMANDS = sys.argv[2]
    KEPT = []
    STOP = []
    TRACKERS = []


    def churn():
        scratch = [str(i) * 3 for i in range(200)]
        del scratch


    def worker():
        while not STOP:
            churn()
            time.sleep(0.0005)


    def leak(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            KEPT.append(bytearray(4096))  # LEAK
            time.sleep(0.001)


    def c_leak(seconds, path):
        # C memory from an extension module (cmem, built by the test) and from a library
        # ctypes loads now, while attached
        import cmem
        grab = ctypes.CDLL(path).grab
        grab.restype = ctypes.c_void_p
        end = time.monotonic() + float(seconds)
        while time.monotonic() < end:
            cmem.leak(32768)  # CLEAK
            KEPT.append(grab(32768))  # GRAB-CALL
            time.sleep(0.002)


    class Allocator(ctypes.Structure):
        _fields_ = [("ctx", ctypes.c_void_p), ("malloc", ctypes.c_void_p),
                    ("calloc", ctypes.c_void_p), ("realloc", ctypes.c_void_p),
                    ("free", ctypes.c_void_p)]


    def allocators():
        out = []
        for domain in range(3):
            a = Allocator()
            ctypes.pythonapi.PyMem_GetAllocator(domain, ctypes.byref(a))
            out.append([a.ctx, a.malloc, a.calloc, a.realloc, a.free])
        return out


    def state():
        return {
            "threads": len(os.listdir("/proc/self/task")),
            "allocators": allocators(),
            "modules": sorted(m for m in sys.modules if m.split(".")[0] == "memsleuth"),
            "threading": "threading" in sys.modules,
            "gc_callbacks": len(gc.callbacks),
            "path": sys.path,
            "main": sorted(k for k in globals() if not k.startswith("__")),
        }


    def next_command():
        if MODE == "read":
            return sys.stdin.readline().strip()
        while True:
            try:
                with open(COMMANDS) as f:
                    text = f.read().strip()
                os.unlink(COMMANDS)
                if text:
                    return text
            except FileNotFoundError:
                pass
            if MODE == "sleep":
                time.sleep(0.05)
            else:
                for _ in range(20):
                    churn()


    if MODE == "threads":
        import threading
        for _ in range(3):
            threading.Thread(target=worker, daemon=True).start()
    allocators()  # ctypes' own first-use allocations, before the first state
    print("ready", flush=True)
    while True:
        command = next_command()
        if command.startswith("leak"):
            leak(float(command.split()[1]))
            print("leaked", flush=True)
        elif command == "state":
            print(json.dumps(state()), flush=True)
        elif command.startswith("hold"):
            # C code that keeps the GIL: sleep() called through PyDLL, which does not release it
            ctypes.PyDLL(None).sleep(int(command.split()[1]))
            print("held", flush=True)
        elif command.startswith("cleak"):
            c_leak(*command.split(maxsplit=2)[1:])
            print("leaked", flush=True)
        elif command == "malloc":
            print(__import__("cmem").malloc_address(), flush=True)
        elif command.startswith("track "):
            # the program's own tracker
            TRACKERS.append(__import__("memsleuth").Tracker(command.split(maxsplit=1)[1]))
            TRACKERS[-1].start()
            print("tracking", flush=True)
        elif command == "untrack":
            TRACKERS.pop().stop()
            print("untracked", flush=True)
        elif command == "tracemalloc":
            __import__("tracemalloc").start()
            print("tracing", flush=True)
        elif command == "exit":
            STOP.append(1)
            sys.exit(7)
    """


class Target:
    """The program above, running; commands go where its mode waits for them."""

    def __init__(self, tmp_path: Path, mode: str, env: Optional[dict[str, str]] = None) -> None:
        self.mode = mode
        self.script = write(tmp_path, f"target_{mode}.py", TARGET)
        self.commands = tmp_path / "command"
        self.proc = subprocess.Popen(
            [sys.executable, str(self.script), mode, str(self.commands)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.readline() == "ready"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def readline(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the target ended: {self.proc.wait()} {self.stderr()}")
        return line.strip()

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read() if self.proc.poll() is not None else ""

    def send(self, command: str) -> None:
        if self.mode == "read":
            assert self.proc.stdin is not None
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        else:
            tmp = self.commands.with_suffix(".tmp")
            tmp.write_text(command)
            tmp.rename(self.commands)

    def state(self) -> dict[str, Any]:
        self.send("state")
        result: dict[str, Any] = json.loads(self.readline())
        return result

    def finish(self) -> int:
        self.send("exit")
        code = self.proc.wait(timeout=30)
        self.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.close()

    def close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                # stdin of a target that exited with input unread
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()


def attach(pid: int, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "memsleuth", "attach", str(pid), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_recording(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """Reads attach's stderr until it says it records; returns what it said."""
    assert proc.stderr is not None
    said = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise AssertionError(f"attach ended before recording: {said}{proc.wait()}")
        said += line
        if "recording process" in line:
            return said
    raise AssertionError(f"attach did not start recording: {said}")


def attach_and_leak(target: Target, capture: Path) -> tuple[str, dict[str, Any]]:
    """Attaches for 3 s while the target leaks (from just after the attach to past its end),
    and returns attach's stderr and the capture's verdict."""
    proc = attach(target.pid, "--duration", "3s", "-o", str(capture))
    said = wait_recording(proc)
    target.send("leak 4.5")
    _, rest = proc.communicate(timeout=120)
    assert target.readline() == "leaked"
    said += rest
    assert proc.returncode == 0, said
    assert "Traceback" not in said, said
    verdict = memsleuth("report", "verdict", "--json", str(capture))
    assert verdict.returncode == 0, verdict.stderr
    return said, verdict.json()


def assert_names_the_leak(target: Target, said: str, verdict: dict[str, Any]) -> None:
    assert verdict["verdict"] == "leaking", verdict
    first = verdict["findings"][0]
    assert first["kind"] == "python", verdict["findings"]
    loc = first["location"]
    assert (Path(loc["file"]).name, loc["line"]) == (
        target.script.name,
        line_of(target.script, "LEAK"),
    ), verdict["findings"]
    # what memsleuth did in the target is not the target's
    files = [(f["location"] or {}).get("file", "") for f in verdict["findings"]]
    assert not any("memsleuth" in file for file in files), verdict["findings"]
    assert f"{target.script.name}:{line_of(target.script, 'LEAK')}" in said
    assert "detached from process" in said
    # the holder of blocks the attacher picked from its own pass on the capture (the process
    # never reads its capture), and the capture ends the program's time where recording ended
    assert "KEPT" in (first["holder"] or ""), first
    assert "held by module __main__ .KEPT" in said, said
    assert verdict["signals"]["end_marked"], verdict
    assert not verdict["signals"]["phases"], verdict


END_STEPS = """
    import json
    import os
    import sys
    import time

    from memsleuth import _native
    from memsleuth._tracker import Tracker

    KEPT = []
    tracker = Tracker(sys.argv[1], census=0.2)
    tracker.start()
    start = time.monotonic()
    while time.monotonic() - start < 2:
        KEPT.append(bytes(2000 + len(KEPT) % 7))  # KEPT-LINE
        time.sleep(0.002)
    upto = _native.track_end_sync()
    recording = _native.tracking()
    AFTER = [bytearray(70000) for _ in range(50)]  # AFTER-LINE
    # a bytes object is no gc object: its block starts at the object
    _native.track_end_hold([(id(KEPT[-1]), 0)])
    tracker.stop()
    print(json.dumps({"upto": upto, "recording": recording, "size": os.path.getsize(sys.argv[1])}))
    """


def test_the_recording_end_stops_the_hooks_marks_the_capture_and_holds_the_blocks_given(
    tmp_path: Path,
) -> None:
    # `attach`'s end, as the agent runs it, without gdb: the process never reads its capture
    script = write(tmp_path, "ends.py", END_STEPS)
    capture = tmp_path / "ends.msl"
    done = subprocess.run(
        [sys.executable, str(script), str(capture)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    # the hooks record nothing once the end began; the length is a whole capture's so far
    assert said["recording"] is False
    assert 0 < said["upto"] <= said["size"]
    leaks = memsleuth("report", "leaks", "--json", str(capture)).json()
    lines = {site["line"] for site in leaks["sites"] if site["file"] == str(script)}
    assert line_of(script, "KEPT-LINE") in lines, leaks["sites"]
    assert line_of(script, "AFTER-LINE") not in lines, leaks["sites"]
    verdict = memsleuth("report", "verdict", "--json", str(capture)).json()
    assert verdict["signals"]["end_marked"], verdict
    assert not verdict["signals"]["phases"], verdict
    first = verdict["findings"][0]
    assert first["location"]["line"] == line_of(script, "KEPT-LINE"), verdict["findings"]
    assert "KEPT" in (first["holder"] or ""), first
    text = memsleuth("report", "verdict", str(capture)).stdout
    # the program went on: its time is the run's, and what was alive, alive at the recording's end
    assert "when the recording ended" in text, text
    assert "the run's" in text, text
    assert "does not mark where" not in text, text
    listed = memsleuth("report", "leaks", str(capture)).stdout
    assert "still alive when the recording ended" in listed, listed


def assert_left_as_found(before: dict[str, Any], after: dict[str, Any]) -> None:
    # no thread, allocator hook, module, gc callback, path entry or global of memsleuth's stays
    assert after == before


@pytest.mark.parametrize("mode", ["read", "sleep", "busy", "threads"])
def test_attach_names_a_leak_made_while_attached_and_leaves_the_process_as_it_was(
    tmp_path: Path, mode: str
) -> None:
    target = Target(tmp_path, mode)
    try:
        before = target.state()
        said, verdict = attach_and_leak(target, tmp_path / "a.msl")
        assert_names_the_leak(target, said, verdict)
        assert_left_as_found(before, target.state())
        assert target.finish() == 7
    finally:
        target.kill()


def test_attaching_twice_in_a_row_works(tmp_path: Path) -> None:
    target = Target(tmp_path, "busy")
    try:
        before = target.state()
        for n in range(2):
            said, verdict = attach_and_leak(target, tmp_path / f"a{n}.msl")
            assert_names_the_leak(target, said, verdict)
            assert_left_as_found(before, target.state())
        assert target.finish() == 7
    finally:
        target.kill()


def test_ctrl_c_stops_the_recording_and_detaches(tmp_path: Path) -> None:
    target = Target(tmp_path, "sleep")
    try:
        before = target.state()
        capture = tmp_path / "a.msl"
        proc = attach(target.pid, "-o", str(capture))
        said = wait_recording(proc)
        assert "until Ctrl-C" in said
        target.send("leak 4")
        time.sleep(3)
        proc.send_signal(2)
        _, rest = proc.communicate(timeout=120)
        assert target.readline() == "leaked"
        assert proc.returncode == 0, said + rest
        assert "detached from process" in rest
        verdict = memsleuth("report", "verdict", "--json", str(capture)).json()
        assert_names_the_leak(target, said + rest, verdict)
        assert_left_as_found(before, target.state())
        assert target.finish() == 7
    finally:
        target.kill()


def last_status(session: Path, prefix: str, timeout: float = 60) -> str:
    """Waits until the agent's last status line in the attach's directory starts with
    `prefix`; returns it."""
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, IndexError):
            line = (session / "request.json.status").read_text().splitlines()[-1]
            if line.startswith(prefix):
                return line
        time.sleep(0.05)
    raise AssertionError(f"the agent never said {prefix!r}; last: {line!r}")


def test_an_attacher_lost_while_the_process_waits_for_its_answer_leaves_it_as_it_was(
    tmp_path: Path,
) -> None:
    # the process asks the attacher which blocks to hold, and waits for the answer untracked;
    # an attacher stopped, then killed, gives none: the process ends the session on its own
    target = Target(tmp_path, "sleep")
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    proc: Optional[subprocess.Popen[str]] = None
    try:
        before = target.state()
        capture = tmp_path / "a.msl"
        proc = subprocess.Popen(
            [sys.executable, "-m", "memsleuth", "attach", str(target.pid), "-o", str(capture)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TMPDIR": str(sessions)},
        )
        wait_recording(proc)
        target.send("leak 1.5")
        assert target.readline() == "leaked"
        os.kill(proc.pid, signal.SIGSTOP)
        (session,) = sessions.iterdir()
        (session / "request.json.stop").write_text("")  # as the attacher's Ctrl-C would
        last_status(session, "holders ")
        proc.kill()
        proc.communicate(timeout=30)
        last_status(session, "done")
        assert_left_as_found(before, target.state())
        verdict = memsleuth("report", "verdict", "--json", str(capture)).json()
        assert verdict["signals"]["end_marked"], verdict
        first = verdict["findings"][0]
        assert first["location"]["line"] == line_of(target.script, "LEAK"), verdict["findings"]
        assert target.finish() == 7
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()
        target.kill()


def test_an_allocator_installed_over_memsleuths_while_attached_is_kept(tmp_path: Path) -> None:
    target = Target(tmp_path, "sleep")
    try:
        before = target.state()
        proc = attach(target.pid, "--duration", "2s", "-o", str(tmp_path / "a.msl"))
        wait_recording(proc)
        # tracemalloc wraps whatever allocator is in place: memsleuth's, now
        target.send("tracemalloc")
        assert target.readline() == "tracing"
        _, said = proc.communicate(timeout=120)
        assert proc.returncode == 0, said
        assert "an allocator was installed over them" in said
        after = target.state()
        # tracemalloc still works on top; nothing else of memsleuth's stayed
        assert after["allocators"] != before["allocators"]
        assert {k: v for k, v in after.items() if k != "allocators"} == {
            k: v for k, v in before.items() if k != "allocators"
        }
        assert target.finish() == 7
    finally:
        target.kill()


def test_a_target_that_exits_while_attached_leaves_a_readable_capture(tmp_path: Path) -> None:
    target = Target(tmp_path, "sleep")
    try:
        capture = tmp_path / "a.msl"
        proc = attach(target.pid, "--duration", "60s", "-o", str(capture))
        wait_recording(proc)
        target.send("leak 2.5")
        assert target.readline() == "leaked"
        assert target.finish() == 7
        _, said = proc.communicate(timeout=120)
        assert proc.returncode == 0, said
        assert "exited while attached" in said
        verdict = memsleuth("report", "verdict", "--json", str(capture))
        assert verdict.returncode == 0, verdict.stderr
        assert verdict.json()["findings"][0]["location"]["line"] == line_of(target.script, "LEAK")
    finally:
        target.kill()


def test_a_target_holding_the_gil_past_the_timeout_is_left_as_it_was(tmp_path: Path) -> None:
    target = Target(tmp_path, "sleep")
    try:
        before = target.state()
        target.send("hold 4")
        time.sleep(0.5)
        line = one_clear_line(memsleuth("attach", str(target.pid), "--timeout", "1s"))
        assert "did not let memsleuth's thread take the GIL" in line
        assert "within 1s" in line
        assert target.readline() == "held"
        # memsleuth's thread got the GIL once the C call returned, found the attach abandoned
        # and ended without importing or recording anything
        time.sleep(0.5)
        assert_left_as_found(before, target.state())
        assert target.finish() == 7
    finally:
        target.kill()


def test_why_and_census_answer_about_the_running_process_and_record_nothing(
    tmp_path: Path,
) -> None:
    target = Target(tmp_path, "sleep")
    try:
        target.send("leak 0.3")
        assert target.readline() == "leaked"
        before = target.state()
        why = memsleuth("attach", str(target.pid), "--why", "KEPT[0]", cwd=tmp_path)
        assert why.returncode == 0, why.stderr
        # the chain from the module's global to the object
        assert "__main__" in why.stdout, why.stdout
        assert "KEPT" in why.stdout, why.stdout
        assert "detached from process" in why.stderr
        census = memsleuth("attach", str(target.pid), "--census", cwd=tmp_path)
        assert census.returncode == 0, census.stderr
        assert "bytearray" in census.stdout, census.stdout
        # nothing recorded, nothing left
        assert not list(tmp_path.glob("*.msl"))
        assert_left_as_found(before, target.state())
        bad = memsleuth("attach", str(target.pid), "--why", "NO_SUCH_NAME", cwd=tmp_path)
        line = one_clear_line(bad)
        assert "NameError" in line
        assert "NO_SUCH_NAME" in line
        assert_left_as_found(before, target.state())
        assert target.finish() == 7
    finally:
        target.kill()


def one_clear_line(result: Any) -> str:
    """The error line of a failed attach: one line, no traceback, a non-zero exit."""
    text: str = result.assert_clean_failure()
    return text


def test_a_process_another_debugger_traces_is_one_line_and_left_as_it_was(
    tmp_path: Path,
) -> None:
    """ptrace refused for real: a process has one tracer at a time."""
    target = Target(tmp_path, "sleep")
    try:
        before = target.state()
        debugger = subprocess.Popen(
            ["gdb", "-q", "-nx", "-batch", "-p", str(target.pid), "-ex", "shell sleep 4"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            status = Path(f"/proc/{target.pid}/status")
            while "TracerPid:\t0" in status.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            line = one_clear_line(memsleuth("attach", str(target.pid), "--duration", "1s"))
            assert f"process {target.pid} is being traced by process" in line
            assert "detach that debugger first" in line
        finally:
            # it detaches as its batch ends; the process runs on
            debugger.wait(timeout=60)
        assert_left_as_found(before, target.state())
        assert target.finish() == 7
    finally:
        target.kill()


def test_a_dead_pid_is_one_line(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    line = one_clear_line(memsleuth("attach", str(gone.pid), "--duration", "1s"))
    assert f"no process with PID {gone.pid}" in line


def test_a_process_that_is_not_python_is_one_line(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "30"])
    try:
        line = one_clear_line(memsleuth("attach", str(other.pid), "--duration", "1s"))
        assert "is not a Python process" in line
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def other_python() -> Optional[str]:
    """An interpreter of another minor version than this one, if the machine has one."""
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for v in ("3.9", "3.13", "3.11", "3.12", "3.10"):
        if v == mine:
            continue
        for candidate in sorted(root.glob(f"{v}.*/bin/python{v}")):
            return str(candidate)
    return None


def test_a_python_of_another_version_is_one_line_naming_both(tmp_path: Path) -> None:
    python = other_python()
    if python is None:
        pytest.skip("no interpreter of another version on this machine")
    script = write(tmp_path, "idle.py", "import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([python, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        line = one_clear_line(memsleuth("attach", str(proc.pid), "--duration", "1s"))
        assert "runs Python 3." in line
        assert f"installed in Python {sys.version_info[0]}.{sys.version_info[1]}" in line
        assert "-m memsleuth attach" in line
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.communicate()


def test_another_users_process_is_one_line(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the attacher as another user")
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    usable = subprocess.run(
        [*nobody, sys.executable, "-c", "import memsleuth"], cwd="/", capture_output=True
    )
    if usable.returncode != 0:
        pytest.skip("this interpreter cannot run as another user (its files are root's only)")
    target = Target(tmp_path, "sleep")
    try:
        result = subprocess.run(
            [*nobody, sys.executable, "-m", "memsleuth", "attach", str(target.pid), "-d", "1s"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
            env={**os.environ, "HOME": "/tmp"},
        )
        assert result.returncode == 1, result.stderr
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, result.stderr
        assert "belongs to another user" in lines[0]
        assert target.state()["modules"] == []
        assert target.finish() == 7
    finally:
        target.kill()


def test_without_gdb_it_is_one_line(tmp_path: Path) -> None:
    target = Target(tmp_path, "sleep")
    try:
        bindir = tmp_path / "bin"
        bindir.mkdir()
        result = memsleuth(
            "attach", str(target.pid), "--duration", "1s", env={**os.environ, "PATH": str(bindir)}
        )
        line = one_clear_line(result)
        assert "needs gdb" in line
        assert target.finish() == 7
    finally:
        target.kill()


def test_attach_native_names_c_leaks_and_puts_the_allocator_back(tmp_path: Path) -> None:
    """`--native` in a process that started without the preload, twice in a row: an extension
    loaded before the first attach and a library loaded while attached are both seen at their
    C lines under their Python lines, and the extension's malloc entry points at the C
    library's again after each detach."""
    (tmp_path / "ext").mkdir()
    built = cext.build("cmem", tmp_path / "ext")
    library = next(cext.build("grab", tmp_path / "ext").glob("grab*"))
    target = Target(tmp_path, "sleep", env=cext.env_with(built))
    try:
        target.send("malloc")
        before = int(target.readline())
        state = target.state()
        for n in range(2):
            capture = tmp_path / f"n{n}.msl"
            proc = attach(target.pid, "--native", "--duration", "3s", "-o", str(capture))
            wait_recording(proc)
            target.send("malloc")
            # the extension's calls go to memsleuth's allocator now
            assert int(target.readline()) != before
            # from just after the attach to past its end
            target.send(f"cleak 4 {library}")
            assert target.readline() == "leaked"
            _, said = proc.communicate(timeout=120)
            assert proc.returncode == 0, said
            assert "detached from process" in said
            target.send("malloc")
            assert int(target.readline()) == before
            assert_left_as_found(state, target.state())
            verdict = memsleuth("report", "verdict", "--json", str(capture))
            assert verdict.returncode == 0, verdict.stderr
            findings = verdict.json()["findings"]
            assert verdict.json()["verdict"] == "leaking", findings
            # each at its C line, with the Python line that called it in its stack
            at = {
                Path(f["location"]["file"]).name: [s["line"] for s in f["stack"]]
                for f in findings
                if f["kind"] == "python"
            }
            assert line_of(target.script, "CLEAK") in at["cmem.c"], (n, findings)
            assert line_of(target.script, "GRAB-CALL") in at["grab.c"], (n, findings)
        assert target.finish() == 7
    finally:
        target.kill()


def test_a_process_running_its_own_tracker_is_one_line_and_keeps_it(tmp_path: Path) -> None:
    target = Target(tmp_path, "sleep")
    try:
        own = tmp_path / "own.msl"
        target.send(f"track {own}")
        assert target.readline() == "tracking"
        for extra in ((), ("--native",)):
            line = one_clear_line(
                memsleuth("attach", str(target.pid), "--duration", "1s", *extra, timeout=120)
            )
            assert "already tracking" in line, line
        # the program's tracker went on, and ends as it would have
        target.send("leak 0.5")
        assert target.readline() == "leaked"
        target.send("untrack")
        assert target.readline() == "untracked"
        verdict = memsleuth("report", "verdict", "--json", str(own))
        assert verdict.returncode == 0, verdict.stderr
        assert target.finish() == 7
    finally:
        target.kill()
