"""Both install routes give `from gnuradio import largesc`: pip (editable, in the venv) and CMake."""
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_pip_editable_route_imports_from_this_checkout():
    from gnuradio import largesc
    assert Path(largesc.__file__).resolve().parent == REPO / "python" / "largesc"
    assert callable(largesc.mimi_encoder)


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed (scripts/install_env.sh installs it)")
def test_cmake_route_installs_into_a_temporary_prefix(tmp_path):
    build, prefix = tmp_path / "build", tmp_path / "prefix"
    pydir = prefix / "lib" / "python3" / "dist-packages"
    r = subprocess.run(["cmake", "-S", str(REPO), "-B", str(build), f"-DCMAKE_INSTALL_PREFIX={prefix}",
                        f"-DGR_PYTHON_DIR={pydir}", f"-DLARGESC_TEST_PYTHON={sys.executable}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["cmake", "--install", str(build)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (prefix / "share" / "gnuradio" / "grc" / "blocks" / "largesc_mimi_encoder.block.yml").is_file()
    assert (prefix / "bin" / "gr-largesc").is_file()
    # Import from the prefix with a plain interpreter path (no editable finder from the venv's .pth
    # files): the venv's site-packages comes after the prefix, only for torch and moshi.
    venv_site = sysconfig.get_paths()["purelib"]
    code = ("from gnuradio import largesc; import pathlib; print(pathlib.Path(largesc.__file__).resolve()); "
            "e = largesc.mimi_encoder(profile='tiny'); print(type(e).__name__)")
    env = dict(os.environ, PYTHONPATH=f"{pydir}{os.pathsep}{venv_site}", HF_HUB_OFFLINE="1")
    r = subprocess.run(["/usr/bin/python3", "-s", "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.split()
    assert lines[0].startswith(str(prefix.resolve())), lines
    assert lines[-1] == "mimi_encoder"
    # the bundled clip travels with the package
    assert (pydir / "gnuradio" / "largesc" / "data" / "speech_librivox_16k.wav").is_file()
