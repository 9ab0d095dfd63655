"""Builds the tiny C extensions of tests/native/ for the running interpreter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

NATIVE = Path(__file__).resolve().parent / "native"


def build(name: str, into: Path, flags: tuple[str, ...] = ()) -> Path:
    """Compiles tests/native/<name>.c (or .cpp, as C++) into an importable module in ``into``,
    with extra compiler ``flags``; returns ``into``. Skips the test when there is no compiler or
    no Python headers."""
    source = NATIVE / f"{name}.c"
    if not source.exists():
        source = NATIVE / f"{name}.cpp"
    cpp = source.suffix == ".cpp"
    cc = (shutil.which("g++") or shutil.which("c++")) if cpp else shutil.which("gcc")
    cc = cc or (None if cpp else shutil.which("cc"))
    include = sysconfig.get_paths()["include"]
    if cc is None or not (Path(include) / "Python.h").exists():
        compiler = "a C++ compiler" if cpp else "a C compiler"
        pytest.skip(f"needs {compiler} and Python.h (looked in {include})")
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    out = into / f"{name}{suffix}"
    subprocess.run(
        [cc, "-shared", "-fPIC", "-O1", "-g", *flags, "-I", include, str(source), "-o", str(out)],
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
