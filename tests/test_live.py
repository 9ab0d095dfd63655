"""`memsleuth live`: the terminal view, driven in a real terminal (tmux: send-keys, capture-pane)
while a leaking program is recorded by another process, and `attach --live`."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import memsleuth
from test_attach import Target, assert_left_as_found
from test_verdict import line_of, write

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

LEAK = """
    import time

    KEPT = []
    start = time.monotonic()
    while time.monotonic() - start < {seconds}:
        KEPT.append(bytearray(4096))  # LEAK
        time.sleep(0.001)
    """


class Terminal:
    """A real terminal (a detached tmux session, 150x45) running one shell command.

    Each terminal has its own tmux server (`-S`): on the shared default server, one test's
    `kill-session` of the server's last session ends the server while another test's
    `new-session` is connecting to it ("server exited unexpectedly", seen in CI under `-n 2`)."""

    def __init__(self, command: str, cwd: Path) -> None:
        self.name = f"ms-{uuid.uuid4().hex[:8]}"
        # a short path: a socket's path is limited to 107 bytes, and tmux leaves it behind
        self.socket = Path(tempfile.gettempdir()) / f"{self.name}.tmux"
        # the marker tells when the command ended, and how
        wrapped = f"{command}; echo LIVE-EXIT=$?; sleep 60"
        size = ["-x", "150", "-y", "45"]
        self.tmux("new-session", "-d", "-s", self.name, *size, "-c", str(cwd), wrapped)

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args], capture_output=True, text=True
        )
        assert not check or done.returncode == 0, f"tmux {args[0]} failed: {done.stderr}"
        return done

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name, check=False).stdout

    def wait_for(self, *texts: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if all(t in screen for t in texts):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"never showed {texts}:\n{screen}")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, *keys)

    def close(self) -> None:
        self.tmux("kill-server", check=False)
        self.socket.unlink(missing_ok=True)


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    made: list[Terminal] = []
    yield made
    for t in made:
        t.close()


def command(*args: str) -> str:
    return shlex.join([sys.executable, "-m", "memsleuth", *args])


def test_live_shows_the_leaking_line_growing_while_the_program_runs(
    tmp_path: Path, terminals: list[Terminal]
) -> None:
    script = write(tmp_path, "leaky.py", LEAK.format(seconds=20))
    capture = tmp_path / "leaky.msl"
    run = subprocess.Popen(
        [sys.executable, "-m", "memsleuth", "run", "--no-report", "-o", str(capture), str(script)],
        cwd=tmp_path,
    )
    try:
        # `live` waits a little for a capture that does not exist yet, not for a slow start
        deadline = time.monotonic() + 30
        while not capture.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        term = Terminal(command("live", str(capture)), tmp_path)
        terminals.append(term)
        leak = f"leaky.py:{line_of(script, 'LEAK')}"
        screen = term.wait_for(leak, "growing", "recording")
        assert run.poll() is None, "the program ended before the view showed the leak"
        row = next(line for line in screen.splitlines() if leak in line and "growing" in line)
        assert "MiB/s" in row or "KiB/s" in row, row
        assert "Verdict: leaking" in screen
        term.wait_for("growing types", "bytearray")  # from the censuses, a few seconds in
        term.keys("s")
        term.wait_for("sorted by growth")
        term.keys("Enter")
        screen = term.wait_for("stack of the selected site", "← <module>")
        term.keys("q")
        term.wait_for("LIVE-EXIT=0")
    finally:
        run.kill()
        run.wait()


def test_run_live_shows_the_run_and_q_interrupts_the_program(
    tmp_path: Path, terminals: list[Terminal]
) -> None:
    script = write(tmp_path, "leaky.py", LEAK.format(seconds=60) + "print('finished')\n")
    capture = tmp_path / "leaky.msl"
    term = Terminal(command("run", "--live", "-o", str(capture), str(script)), tmp_path)
    terminals.append(term)
    leak = f"leaky.py:{line_of(script, 'LEAK')}"
    term.wait_for("memsleuth live", "recording", leak, "growing")
    term.keys("q")
    # interrupted as Ctrl-C would: python's status for it, then the verdict as after `run`
    screen = term.wait_for("LIVE-EXIT=130", timeout=60)
    assert "Verdict: leaking" in screen
    assert leak in screen
    assert "leaky-output.log" in screen
    log = (tmp_path / "leaky-output.log").read_text()
    assert "KeyboardInterrupt" in log
    assert "finished" not in log


def test_live_reads_a_finished_capture(tmp_path: Path, terminals: list[Terminal]) -> None:
    script = write(tmp_path, "leaky.py", LEAK.format(seconds=2.5))
    capture = tmp_path / "leaky.msl"
    done = memsleuth("run", "--no-report", "-o", str(capture), str(script), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    term = Terminal(command("live", str(capture)), tmp_path)
    terminals.append(term)
    term.wait_for("finished", f"leaky.py:{line_of(script, 'LEAK')}", "growing")
    term.keys("C-c")
    term.wait_for("LIVE-EXIT=0")


def attach_live(tmp_path: Path, target: Target, terminals: list[Terminal]) -> Terminal:
    """`attach --live` on `target` in a new terminal, once its view shows the recording."""
    capture = tmp_path / "attached.msl"
    term = Terminal(command("attach", str(target.pid), "--live", "-o", str(capture)), tmp_path)
    terminals.append(term)
    term.wait_for("memsleuth live", "recording")
    return term


def shared_with(target: Target) -> list[Path]:
    """The directories of files an attach shares with `target` (attach.rs' `Session`)."""
    return list(Path(tempfile.gettempdir()).glob(f"memsleuth-attach-{target.pid}-*"))


def test_attach_live_records_a_running_process_and_q_detaches(
    tmp_path: Path, terminals: list[Terminal]
) -> None:
    if shutil.which("gdb") is None:
        pytest.skip("gdb is not installed")
    target = Target(tmp_path, "sleep")
    try:
        before = target.state()
        term = attach_live(tmp_path, target, terminals)
        target.send("leak 8")
        leak = f"{target.script.name}:{line_of(target.script, 'LEAK')}"
        term.wait_for(leak, "growing")
        term.keys("q")
        screen = term.wait_for("detached from process", "LIVE-EXIT=0")
        assert leak in screen  # the verdict at the end names the line too
        # and its holder: the blocks to hold were picked from the pass the view read on
        assert ".KEPT" in screen, screen
        assert target.readline() == "leaked"
        assert_left_as_found(before, target.state())
        assert target.finish() == 7
    finally:
        target.kill()


def test_attach_live_whose_terminal_closes_detaches_and_leaves_the_process_as_it_was(
    tmp_path: Path, terminals: list[Terminal]
) -> None:
    if shutil.which("gdb") is None:
        pytest.skip("gdb is not installed")
    target = Target(tmp_path, "sleep")
    try:
        before = target.state()
        term = attach_live(tmp_path, target, terminals)
        # the terminal goes away (SIGHUP): attach leaves the view, stops and detaches
        term.close()
        deadline = time.monotonic() + 60
        after = target.state()
        while after != before and time.monotonic() < deadline:
            time.sleep(0.5)
            after = target.state()
        assert_left_as_found(before, after)
        # and attach itself ends as it would in a terminal: its report written (a hung-up
        # terminal once aborted it in the terminal library's panic hook), its files shared
        # with the process gone
        report = tmp_path / "attached-leaks.html"
        while (not report.exists() or shared_with(target)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert report.exists(), "attach did not end with its report"
        assert not shared_with(target), "attach left its directory behind"
        assert target.finish() == 7
    finally:
        target.kill()


def test_live_bad_input_is_one_line(tmp_path: Path) -> None:
    missing = memsleuth("live", str(tmp_path / "nothing.msl"))
    assert "no capture at" in missing.assert_clean_failure()
    other = tmp_path / "notes.txt"
    other.write_text("not a capture\n")
    foreign = memsleuth("live", str(other))
    assert "notes.txt" in foreign.assert_clean_failure()
    # a capture, but no terminal to draw on
    script = write(tmp_path, "leaky.py", LEAK.format(seconds=0.3))
    capture = tmp_path / "leaky.msl"
    assert memsleuth("run", "--no-report", "-o", str(capture), str(script)).returncode == 0
    piped = memsleuth("live", str(capture))
    assert "draws on a terminal" in piped.assert_clean_failure()
