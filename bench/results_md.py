"""bench/RESULTS.md is shared by the benchmark scripts: each owns one part of it, between
``<!-- begin NAME -->`` and ``<!-- end NAME -->`` markers, and rewrites only that part, so
``bench/run --only watch`` and ``bench/run --only alloc`` leave each other's tables alone."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
from pathlib import Path

PREAMBLE = """\
# memsleuth benchmarks

Written by `bench/run`; do not edit by hand. Each part below is rewritten only by its own
script, between its `<!-- begin/end -->` markers: `bench/run --only watch` rewrites sections
1-3 (`bench/bench_watch.py`), `bench/run --only alloc` the allocation-tracking section
(`bench/bench_alloc.py`), and `bench/run` both. Each part names the command and machine that
produced it.
"""

# parts appear in this order when a file is created or a missing part is added
ORDER = [
    "bench_watch.py",
    "bench_alloc.py",
    "bench_exit.py",
    "bench_objects.py",
    "bench_accuracy.py",
    "bench_hunt.py",
    "bench_native.py",
    "bench_attach.py",
]


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- begin {name} -->", f"<!-- end {name} -->"


def write_section(path: Path, name: str, body: str) -> None:
    """Replaces part ``name`` of ``path`` with ``body`` (created with the preamble if missing)."""
    begin, end = _markers(name)
    block = f"{begin}\n{body.strip()}\n{end}"
    text = path.read_text() if path.exists() else PREAMBLE
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        # insert before the first part that should come after this one, else at the end
        later = ORDER[ORDER.index(name) + 1 :] if name in ORDER else []
        at = min((i for n in later if (i := text.find(_markers(n)[0])) >= 0), default=-1)
        if at >= 0:
            text = text[:at] + block + "\n\n" + text[at:]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def tree_revision(root: Path) -> str:
    """`git describe` of the tree the benchmark was built from (as bench/run saw it when it
    built memsleuth, else as it is now), or "?" outside a checkout."""
    built = os.environ.get("BENCH_BUILT_FROM")
    if built:
        return built
    try:
        return subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def dist_version(dist: str) -> str:
    """The installed version of a distribution (a peer, memsleuth itself), or "?"."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or "?"."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "?"
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")
