"""`memsleuth instruments`: the design map's table, with costs measured here. Timings are not
asserted (a shared machine's noise); that each measured instrument ran and gave figures is."""

from __future__ import annotations

from conftest import memsleuth

MEASURED = {"rss", "python", "python_sampled", "objects", "native"}
ALL = MEASURED | {"pymalloc", "hunt", "attach"}


def test_every_instrument_has_a_row_and_the_measured_ones_have_costs() -> None:
    result = memsleuth("instruments", "--json", "--reps", "1", timeout=300)
    assert result.returncode == 0, result.stderr
    table = result.json()
    assert table["untracked_seconds"] > 0
    assert table["untracked_peak"] > 0
    rows = {r["instrument"]: r for r in table["rows"]}
    assert set(rows) == ALL
    for name in MEASURED:
        row = rows[name]
        assert row["available"]["state"] in ("yes", "with"), row
        assert row["time_ratio"] is not None, row
        assert row["time_ratio"] > 0, row
        assert row["extra_bytes"] is not None, row
    for name in ALL - MEASURED:
        assert rows[name]["time_ratio"] is None


def test_the_table_names_each_instrument_and_how_to_use_it() -> None:
    result = memsleuth("instruments", "--reps", "1", timeout=300)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for words in (
        "memsleuth watch -- python app.py",
        "memsleuth run --native app.py",
        "memsleuth attach PID",
        "every Python allocation, with its stack",
        "available here",
        "time cost",
    ):
        assert words in text, text
    assert "measuring each instrument" in result.stderr


def test_bad_reps_is_one_line() -> None:
    result = memsleuth("instruments", "--reps", "0")
    assert "--reps" in result.assert_clean_failure()
