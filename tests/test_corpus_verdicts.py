"""memsleuth's verdict on every program of tests/corpus, against tests/corpus/truth.json: each
leak found with its kind, the right line first for a python leak, a holder naming what keeps it
where one is left to find; each look-alike quiet, also with both cores busy.

The corpus takes minutes per interpreter, so it runs where MEMSLEUTH_CORPUS is set (dev/test
sets it for the first interpreter it tests); bench/run --only accuracy scores the same programs
against tracemalloc and memray.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import memsleuth

CORPUS = Path(__file__).resolve().parent / "corpus"
TRUTH: list[dict[str, Any]] = json.loads((CORPUS / "truth.json").read_text())

pytestmark = pytest.mark.skipif(
    not os.environ.get("MEMSLEUTH_CORPUS"),
    reason="the corpus takes minutes: set MEMSLEUTH_CORPUS=1 (dev/test does, once)",
)


def entry_id(entry: dict[str, Any]) -> str:
    return str(entry["program"])


@pytest.fixture(scope="module")
def native_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a corpus program: its C extensions built for this interpreter."""
    spec = importlib.util.spec_from_file_location("corpus_build", CORPUS / "native" / "build.py")
    assert spec is not None
    assert spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    try:
        into = build.build(tmp_path_factory.mktemp("corpus-native"))
    except RuntimeError as e:
        pytest.skip(str(e))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(into), env.get("PYTHONPATH")) if p)
    return env


def verdict_of(program: str, tmp_path: Path, env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    capture = tmp_path / "out.msl"
    run = memsleuth(
        "run", "--check", "-o", str(capture), str(CORPUS / program), env=env, cwd=tmp_path
    )
    assert run.returncode in (0, 3), run.stderr
    report = memsleuth("report", "verdict", "--json", str(capture), env=env)
    assert report.returncode == 0, report.stderr
    model: dict[str, Any] = json.loads(report.stdout)
    return run.returncode, model


def basename_line(finding: dict[str, Any]) -> str:
    loc = finding.get("location") or {}
    return f"{Path(str(loc.get('file'))).name}:{loc.get('line')}"


@pytest.mark.parametrize("entry", TRUTH, ids=entry_id)
def test_corpus_program(entry: dict[str, Any], tmp_path: Path, native_env: dict[str, str]) -> None:
    code, model = verdict_of(entry["program"], tmp_path, native_env)
    findings = model["findings"]
    if not entry["leaks"]:
        assert code == 0, findings
        assert model["verdict"] != "leaking", findings
        return
    assert code == 3, model
    of_kind = [f for f in findings if f["kind"] == entry["kind"]]
    assert of_kind, findings
    if entry["kind"] == "python":
        assert findings[0]["kind"] == "python", findings
        assert basename_line(findings[0]) == entry["line"], findings
    # worker_context.py's thread-locals are gone before the main code ends, when main()'s own
    # pool closes: its holder is one a census found while the program ran
    if entry["holder"]:
        assert any(entry["holder"] in str(f.get("holder") or "") for f in of_kind), of_kind


@pytest.fixture
def both_cores_busy() -> Iterator[None]:
    """Two processes spinning for the test's duration: the look-alikes must stay quiet when the
    program gets half the CPU it would have alone."""
    spin = [sys.executable, "-c", "while True: pass"]
    hogs = [subprocess.Popen(spin) for _ in range(2)]
    try:
        yield
    finally:
        for h in hogs:
            h.kill()
            h.wait()


@pytest.mark.parametrize("entry", [t for t in TRUTH if not t["leaks"]], ids=entry_id)
def test_look_alikes_stay_quiet_under_load(
    entry: dict[str, Any], tmp_path: Path, native_env: dict[str, str], both_cores_busy: None
) -> None:
    code, model = verdict_of(entry["program"], tmp_path, native_env)
    assert code == 0, model["findings"]
    assert model["verdict"] != "leaking", model["findings"]
