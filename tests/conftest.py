from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = Path(__file__).resolve().parent / "programs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


class Result:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)

    def assert_clean_failure(self) -> str:
        """A bad input must give one clear error line, a non-zero exit, no panic/traceback."""
        assert self.returncode != 0, self.stderr
        assert "Traceback" not in self.stderr, self.stderr
        assert "panicked" not in self.stderr, self.stderr
        errors = [line for line in self.stderr.splitlines() if "error" in line]
        assert len(errors) == 1, self.stderr
        assert errors[0].startswith("memsleuth: error: "), self.stderr
        return errors[0]


def memsleuth(*args: str, timeout: float = 120, **kw: Any) -> Result:
    """Runs the installed command line through this interpreter."""
    proc = subprocess.run(
        [sys.executable, "-m", "memsleuth", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )
    return Result(proc)


def program(name: str) -> str:
    return str(PROGRAMS / name)


def watch_args(
    capture: Path, script: str, *args: str, interval: str = "50ms", flags: tuple[str, ...] = ()
) -> list[str]:
    """`watch` arguments that run one of tests/programs under this interpreter, quietly;
    `flags` go before the command."""
    head = ["watch", "-q", *flags, "-i", interval, "-o", str(capture), "--"]
    return [*head, sys.executable, program(script), *args]


@pytest.fixture
def run() -> Any:
    return memsleuth
