"""`memsleuth report` outputs made from a real capture."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from conftest import FIXTURES, memsleuth


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    dst = tmp_path / "leak.msl"
    shutil.copy(FIXTURES / "v1.0" / "leak.msl", dst)
    return dst


def test_summary_text(capture: Path) -> None:
    result = memsleuth("report", "summary", str(capture))
    assert result.returncode == 0, result.stderr
    assert "verdict: GROWING" in result.stdout
    assert "MiB/s" in result.stdout
    assert "target exited (exit code 0)" in result.stdout


def test_summary_json_is_complete(capture: Path) -> None:
    data = memsleuth("report", "summary", "--json", str(capture)).json()
    assert data["verdict"]["kind"] == "growing"
    assert data["pid"] == 30205
    assert data["end"]["samples"] == 31
    assert data["last"] > data["first"]
    assert data["peak"] >= data["last"]


def test_timeline_png_is_a_real_picture(capture: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.png"
    result = memsleuth("report", "timeline", str(capture), "-o", str(out))
    assert result.returncode == 0, result.stderr
    raw = out.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", raw[16:24])
    assert (width, height) == (1200, 600)
    assert len(raw) > 20_000  # not blank


def test_timeline_svg_default_name(capture: Path) -> None:
    result = memsleuth("report", "timeline", str(capture))
    assert result.returncode == 0, result.stderr
    svg = (capture.parent / "leak-timeline.svg").read_text()
    assert svg.lstrip().startswith("<svg")
    assert "GROWING" in svg


def test_timeline_html_is_self_contained(capture: Path) -> None:
    result = memsleuth("report", "timeline", str(capture), "--html")
    assert result.returncode == 0, result.stderr
    page = (capture.parent / "leak-timeline.html").read_text()
    assert "<svg" in page
    assert "GROWING" in page
    stripped = page.replace("http://www.w3.org/2000/svg", "")
    assert "http://" not in stripped
    assert "https://" not in stripped


def test_timeline_json_has_the_series(capture: Path) -> None:
    data = memsleuth("report", "timeline", "--json", str(capture)).json()
    assert len(data["timeline"]["total"]) == 31
    assert data["timeline"]["processes"][0]["root"] is True
    json.dumps(data)
