"""The pytest plugin, run in a separate pytest (pytester, in a subprocess): hunted tests fail
while they leak and pass once fixed, each marker and default budget does what it says, fixtures
are set up and torn down with every run, and the summary is gathered under pytest-xdist."""

from __future__ import annotations

import importlib.util

import pytest

pytest_plugins = ["pytester"]

LEAKY = """
    import pytest

    KEPT = []

    class Session:
        def __init__(self):
            self.buffer = bytearray(4096)

    def test_leaks():
        KEPT.append(Session())

    def test_clean():
        scratch = [Session() for _ in range(10)]
        assert len(scratch) == 10
    """


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_app=source)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_a_hunted_test_fails_while_it_leaks_and_says_why(pytester: pytest.Pytester) -> None:
    result = run(pytester, LEAKY, "--memsleuth-hunt")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "FAILED test_app.py::test_leaks" in out
    assert "memsleuth: the test leaks" in out
    assert "test_app.Session" in out  # the type that leaks
    assert "test_app.py:10 test_leaks()" in out  # the line
    assert "held by module test_app .KEPT" in out  # its holder


def test_no_leaks_passes_a_cache_that_fills_once(pytester: pytest.Pytester) -> None:
    # pytest-memray's leak markers fail here: one pass, no warm-up
    source = """
        import functools
        import pytest

        @functools.lru_cache(maxsize=None)
        def table(n):
            return [str(i) for i in range(n)]

        @pytest.mark.no_leaks
        def test_uses_a_cache():
            assert len(table(5000)) == 5000

        KEPT = []

        @pytest.mark.no_leaks
        def test_keeps_everything():
            KEPT.append([0] * 1000)
        """
    result = run(pytester, source)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*FAILED test_app.py::test_keeps_everything*"])
    assert "memsleuth: the test leaks" in result.stdout.str()


def test_limit_leaks_fails_above_its_bytes_per_run(pytester: pytest.Pytester) -> None:
    source = """
        import pytest

        KEPT = []

        @pytest.mark.limit_leaks("1 KiB")
        def test_big_leak():
            KEPT.append(bytearray(64 * 1024))

        @pytest.mark.limit_leaks("1 MiB")
        def test_small_leak():
            KEPT.append(bytearray(1000))
        """
    result = run(pytester, source)
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "FAILED test_app.py::test_big_leak" in out
    assert "each run leaves 64.1 KiB alive, over the limit of 1.0 KiB" in out


def test_limit_memory_fails_on_the_peak_of_the_body(pytester: pytest.Pytester) -> None:
    source = """
        import pytest

        @pytest.mark.limit_memory("1 MiB")
        def test_spikes():
            big = [bytearray(1024) for _ in range(8 * 1024)]
            assert len(big) == 8 * 1024

        @pytest.mark.limit_memory("1 MiB")
        def test_small():
            assert len(bytearray(100 * 1024)) == 100 * 1024
        """
    result = run(pytester, source)
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "FAILED test_app.py::test_spikes" in out
    assert "peaked at" in out
    assert "over the limit of 1.0 MiB" in out
    assert "test_app.py:5 test_spikes" in out  # the line the peak was made at


def test_a_default_budget_applies_to_every_test_and_a_marker_overrides_it(
    pytester: pytest.Pytester,
) -> None:
    source = """
        import pytest

        def test_default():
            assert len([bytearray(1024) for _ in range(4096)]) == 4096

        @pytest.mark.limit_memory("64 MiB")
        def test_own_budget():
            assert len([bytearray(1024) for _ in range(4096)]) == 4096
        """
    result = run(pytester, source, "--memsleuth-limit-memory=1MiB")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*FAILED test_app.py::test_default*"])
    # the same default from the ini file
    pytester.makeini("[pytest]\nmemsleuth_limit_memory = 1 MiB\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)


def test_limits_per_parametrization(pytester: pytest.Pytester) -> None:
    source = """
        import pytest

        @pytest.mark.parametrize(
            "kib",
            [
                pytest.param(64, marks=pytest.mark.limit_memory("1 MiB")),
                pytest.param(4096, marks=pytest.mark.limit_memory("1 MiB")),
                pytest.param(4096, marks=pytest.mark.limit_memory("16 MiB")),
            ],
        )
        def test_sizes(kib):
            assert len([bytearray(1024) for _ in range(kib)]) == kib
        """
    result = run(pytester, source)
    result.assert_outcomes(passed=2, failed=1)
    assert "FAILED test_app.py::test_sizes[4096_0]" in result.stdout.str()


def test_function_fixtures_are_set_up_and_torn_down_with_every_run(
    pytester: pytest.Pytester,
) -> None:
    source = """
        import pytest

        REGISTRY = []
        CALLS = {"made": 0}  # a counter: a list of calls would itself leak a reference a run

        @pytest.fixture
        def registered():
            entry = {"payload": [0] * 100}
            REGISTRY.append(entry)
            yield entry
            REGISTRY.remove(entry)

        @pytest.fixture
        def leaky_setup():
            REGISTRY.append({"payload": [0] * 100})
            return None

        def test_uses_a_clean_fixture(registered):
            CALLS["made"] += 1
            assert registered in REGISTRY

        def test_uses_a_leaky_fixture(leaky_setup):
            pass

        def test_each_run_set_the_fixture_up():
            # the hunt ran test_uses_a_clean_fixture, with its fixture, several times
            assert CALLS["made"] > 3
        """
    result = run(pytester, source, "--memsleuth-hunt")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*FAILED test_app.py::test_uses_a_leaky_fixture*"])


def test_output_pytest_keeps_per_run_and_its_own_lines_are_not_the_tests_leak(
    pytester: pytest.Pytester,
) -> None:
    source = """
        import logging

        def test_talks(capsys):
            print("a line of output " * 20)
            logging.getLogger("app").warning("careful %d", 3)
        """
    result = run(pytester, source, "--memsleuth-hunt")
    result.assert_outcomes(passed=1)


def test_the_summary_lists_the_hungriest_tests(pytester: pytest.Pytester) -> None:
    source = """
        def test_big():
            assert len([bytearray(1024) for _ in range(2048)]) == 2048

        def test_small():
            assert len(bytearray(10)) == 10
        """
    result = run(pytester, source, "--memsleuth")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert "memsleuth: memory of each test's body" in out
    lines = [line for line in out.splitlines() if "test_app.py::" in line]
    assert "test_big" in lines[0], out  # the largest first
    assert "MiB" in lines[0], out


def test_the_hunt_option_leaves_a_path_after_it_to_pytest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_app=LEAKY)
    pytester.mkdir("other")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--memsleuth-hunt", "test_app.py"
    )
    result.assert_outcomes(passed=1, failed=1)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--memsleuth-hunt=4", "test_app.py"
    )
    result.assert_outcomes(passed=1, failed=1)
    assert "3 warm-up runs and 4 measured runs" in result.stdout.str()


def test_exitfirst_and_last_failed_work_with_hunted_tests(pytester: pytest.Pytester) -> None:
    source = (
        LEAKY
        + """
    def test_after():
        pass
    """
    )
    pytester.makepyfile(test_app=source)
    # -x: the leak fails the run's first failing test, and nothing runs after it
    result = pytester.runpytest_subprocess("-x", "--memsleuth-hunt")
    result.assert_outcomes(passed=0, failed=1)
    # --lf (the cache on): only the test that leaked runs again, and fails again
    pytester.runpytest_subprocess("--memsleuth-hunt")
    result = pytester.runpytest_subprocess("--lf", "--memsleuth-hunt")
    result.assert_outcomes(failed=1)
    assert "test_leaks" in result.stdout.str()


def test_a_bad_size_is_one_clear_error(pytester: pytest.Pytester) -> None:
    result = run(pytester, LEAKY, "--memsleuth-limit-memory=lots")
    assert result.ret != 0
    err = result.stderr.str()
    assert "'lots' is not a size" in err, err
    assert "Traceback" not in err, err


def test_without_options_or_markers_the_plugin_does_nothing(pytester: pytest.Pytester) -> None:
    result = run(pytester, LEAKY)
    result.assert_outcomes(passed=2)
    assert "memsleuth:" not in result.stdout.str()


@pytest.mark.skipif(
    importlib.util.find_spec("xdist") is None, reason="needs pytest-xdist (dev/test installs it)"
)
def test_under_xdist_each_worker_hunts_and_the_summary_is_gathered(
    pytester: pytest.Pytester,
) -> None:
    result = run(pytester, LEAKY, "-n", "2", "--memsleuth-hunt", "--memsleuth")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "memsleuth: the test leaks" in out
    assert "memsleuth: memory of each test's body" in out
    assert sum("test_app.py::" in line for line in out.splitlines()) >= 2, out
