"""Builds the C extensions of tests/corpus/native/ for the running interpreter.

    python tests/corpus/native/build.py DIR    compiles native/*.c into DIR and prints DIR

The corpus programs that import them (``import _wirecodec``, ``import _fieldhash``) need DIR on
PYTHONPATH; bench/bench_accuracy.py calls ``build`` and sets it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

NATIVE = Path(__file__).resolve().parent


def build(into: Path) -> Path:
    """Compiles every native/*.c into an importable module in ``into``; returns ``into``.
    Raises RuntimeError when there is no C compiler or no Python headers."""
    cc = shutil.which("gcc") or shutil.which("cc")
    include = sysconfig.get_paths()["include"]
    if cc is None or not (Path(include) / "Python.h").exists():
        raise RuntimeError(f"needs a C compiler and Python.h (looked in {include})")
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    into.mkdir(parents=True, exist_ok=True)
    for source in sorted(NATIVE.glob("*.c")):
        out = into / f"{source.stem}{suffix}"
        proc = subprocess.run(
            [cc, "-shared", "-fPIC", "-O1", "-I", include, str(source), "-o", str(out)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{cc} failed on {source.name}: {proc.stderr.strip()}")
    return into


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(build(Path(sys.argv[1])))
