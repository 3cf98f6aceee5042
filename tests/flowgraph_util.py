"""Shared test helper: run a GNU Radio top block to completion, failing the test instead of hanging."""
import threading

import pytest


def run(tb, timeout=120.0):
    """tb.run() that fails the test instead of hanging."""
    tb.start()
    th = threading.Thread(target=tb.wait, daemon=True)
    th.start()
    th.join(timeout)
    if th.is_alive():
        tb.stop()
        th.join(10)
        pytest.fail(f"flowgraph did not finish within {timeout} s")
