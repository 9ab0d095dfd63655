"""The last step of a leak hunt: a test that fails while the leak is there and passes once it
is fixed. memsleuth's pytest plugin calls the test again and again after a warm-up and reads
every signal after each call:

    python -m pytest examples/test_leaky_server.py
    python -m memsleuth hunt examples/leaky_server.py::handle_one  # the same, without pytest
"""

from __future__ import annotations

import pytest

from leaky_server import handle


@pytest.mark.no_leaks
def test_handling_a_request_leaves_nothing_behind() -> None:
    assert len(handle(7)) == 32
