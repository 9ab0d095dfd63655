"""Builds the tiny C extensions of tests/native/ for the running interpreter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

NATIVE = Path(__file__).resolve().parent / "native"


def build(name: str, into: Path) -> Path:
    """Compiles tests/native/<name>.c into an importable module in ``into``; returns ``into``.
    Skips the test when there is no C compiler or no Python headers."""
    cc = shutil.which("gcc") or shutil.which("cc")
    include = sysconfig.get_paths()["include"]
    if cc is None or not (Path(include) / "Python.h").exists():
        pytest.skip(f"needs a C compiler and Python.h (looked in {include})")
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    out = into / f"{name}{suffix}"
    subprocess.run(
        [cc, "-shared", "-fPIC", "-O1", "-I", include, str(NATIVE / f"{name}.c"), "-o", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return into


def env_with(path: Path) -> dict[str, str]:
    """The environment of a child interpreter that can also import what ``build`` made."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(path), env.get("PYTHONPATH")) if p)
    return env
