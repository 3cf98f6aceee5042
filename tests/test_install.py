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


def _fake_checkout(tmp_path, stamp_extras=None):
    """A copy of ./gr-largesc with the real env_stamp.sh, a fake installer that records the
    extras it was asked for, and a fake venv python that records its arguments."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(REPO / "gr-largesc", root / "gr-largesc")
    shutil.copy2(REPO / "scripts" / "env_stamp.sh", root / "scripts" / "env_stamp.sh")
    for name in ("constraints.txt", "requirements.txt", "requirements-mini.txt", "pyproject.toml",
                 "requirements-eval.txt"):
        shutil.copy2(REPO / name, root / name)
    venv_bin = root / ".venv" / "bin"
    fake = root / "scripts" / "install_env.sh"
    fake.write_text(f'#!/bin/sh\nmkdir -p "$1/bin"\necho "$LARGESC_EXTRAS" > {tmp_path}/installed\n'
                    f'cp {tmp_path}/python "$1/bin/python"\n'
                    f'"{root}/scripts/env_stamp.sh" > "$1/.largesc-install-stamp"\n')
    (tmp_path / "python").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/ran\n')
    for f in (fake, tmp_path / "python"):
        f.chmod(0o755)
    if stamp_extras is not None:                     # an existing venv, installed with these extras
        venv_bin.mkdir(parents=True)
        shutil.copy2(tmp_path / "python", venv_bin / "python")
        env = dict(os.environ, LARGESC_EXTRAS=stamp_extras)
        stamp = subprocess.run([str(root / "scripts" / "env_stamp.sh")], env=env, capture_output=True,
                               text=True, check=True).stdout
        (root / ".venv" / ".largesc-install-stamp").write_text(stamp)
    sudo = tmp_path / "bin" / "sudo"                 # if the test does not run as root
    sudo.parent.mkdir()
    sudo.write_text('#!/bin/sh\nexec "$@"\n')
    sudo.chmod(0o755)
    return root


@pytest.mark.parametrize("stamp_extras", [None, "", "mini"])
def test_the_readme_test_command_installs_the_eval_extra(tmp_path, stamp_extras):
    """Issue 21.9: `./gr-largesc test` on a fresh clone (or a venv without the eval extra)
    installed no eval extra, so 9 evaluation tests skipped; it must install what CI's tests need."""
    root = _fake_checkout(tmp_path, stamp_extras)
    env = {k: v for k, v in os.environ.items() if k != "LARGESC_EXTRAS"}
    env["PATH"] = f"{tmp_path / 'bin'}:{env.get('PATH', '')}"
    r = subprocess.run([str(root / "gr-largesc"), "test", "-q"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    extras = (tmp_path / "installed").read_text().split()[0].split(",")
    assert "eval" in extras and (stamp_extras != "mini" or "mini" in extras)
    assert (tmp_path / "ran").read_text().split()[:2] == ["-m", "pytest"]


def test_ci_runs_exactly_the_readme_test_command():
    run = (REPO / ".ci" / "run").read_text()
    assert "./gr-largesc test" in run and "LARGESC_EXTRAS" not in run.split("set -euo")[1]
