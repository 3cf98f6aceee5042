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


def compile_grc(grc, tmp_path, out=None):
    """grcc a .grc with the repository's block YAML (no display) -> path of the generated script."""
    import os
    import subprocess
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    out = Path(out) if out is not None else tmp_path / "gen"
    out.mkdir(exist_ok=True)
    env = dict(os.environ, GRC_BLOCKS_PATH=str(repo / "grc"), HOME=str(tmp_path / "home"))
    env.pop("DISPLAY", None)
    r = subprocess.run(["grcc", "-o", str(out), str(grc)], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    script = out / (Path(grc).stem + ".py")
    assert script.is_file(), r.stdout + r.stderr
    return script
