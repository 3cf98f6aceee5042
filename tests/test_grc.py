"""Every GRC YAML loads in GRC's Platform; every example compiles with grcc; the codec example runs."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
GRC_DIR = REPO / "grc"
SYSTEM_BLOCKS = Path("/usr/share/gnuradio/grc/blocks")
BLOCK_FILES = sorted(GRC_DIR.glob("*.block.yml"))
EXAMPLES = sorted((REPO / "examples").glob("*.grc"))


def grc_env(tmp_path):
    env = dict(os.environ, GRC_BLOCKS_PATH=str(GRC_DIR), HOME=str(tmp_path / "home"))
    env.pop("DISPLAY", None)
    return env


@pytest.fixture(scope="module")
def platform():
    from gnuradio import gr
    from gnuradio.grc.core.platform import Platform
    p = Platform(name="largesc-test", prefs=gr.prefs(), version=gr.version(),
                 version_parts=(gr.major_version(), gr.api_version(), gr.minor_version()))
    p.build_library([str(SYSTEM_BLOCKS), str(GRC_DIR)])
    return p


def test_there_are_blocks_and_examples():
    assert len(BLOCK_FILES) >= 2 and EXAMPLES


@pytest.mark.parametrize("path", BLOCK_FILES, ids=lambda p: p.name)
def test_block_yaml_passes_schema_and_loads(path, platform):
    from gnuradio.grc.core import schema_checker
    data = yaml.safe_load(path.read_text())
    checker = schema_checker.Validator(schema_checker.BLOCK_SCHEME)
    assert checker.run(data), checker.messages
    assert not checker.messages, checker.messages
    assert data["id"] in platform.blocks
    assert data["id"] == "largesc_" + path.name[len("largesc_"):-len(".block.yml")]
    assert data.get("documentation", "").strip(), f"{path.name} has no documentation"
    assert "from gnuradio import largesc" in data["templates"]["imports"]


def test_tree_lists_every_block():
    tree = yaml.safe_load((GRC_DIR / "largesc.tree.yml").read_text())
    listed = {b for group in tree["[LargeSC]"] for blocks in group.values() for b in blocks}
    ids = {yaml.safe_load(p.read_text())["id"] for p in BLOCK_FILES}
    assert ids == listed


def test_every_block_module_has_yaml():
    blocks = {p.stem for p in (REPO / "python" / "largesc").glob("*.py")
              if not p.stem.startswith(("_", "qa_")) and p.stem not in ("cli",)
              and ("gr.sync_block" in p.read_text() or "gr.basic_block" in p.read_text()
                   or "gr.decim_block" in p.read_text() or "gr.interp_block" in p.read_text()
                   or "gr.hier_block2" in p.read_text())}
    assert blocks, "no block modules found"
    for b in blocks:
        assert (GRC_DIR / f"largesc_{b}.block.yml").is_file(), f"block {b} has no GRC YAML"


@pytest.mark.parametrize("grc", EXAMPLES, ids=lambda p: p.name)
def test_example_compiles_with_grcc(grc, tmp_path):
    out = tmp_path / "gen"
    out.mkdir()
    r = subprocess.run(["grcc", "-o", str(out), str(grc)], env=grc_env(tmp_path),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert list(out.glob("*.py")), r.stdout + r.stderr


def test_mimi_loopback_example_runs_headless(tmp_path):
    from gnuradio.largesc.core import audio_io
    from gnuradio.largesc.core.link import frames
    out = tmp_path / "gen"
    out.mkdir()
    r = subprocess.run(["grcc", "-o", str(out), str(REPO / "examples" / "mimi_loopback.grc")],
                       env=grc_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    clip = REPO / "python" / "largesc" / "data" / "speech_librivox_16k.wav"
    wav_out = tmp_path / "out.wav"
    r = subprocess.run([sys.executable, str(out / "mimi_loopback.py"), "-i", str(clip), "-o", str(wav_out),
                        "-p", "tiny", "-k", "4"], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    y, rate = audio_io.read_wav(wav_out)
    x, rate_in = audio_io.read_wav(clip)
    assert rate == 24000
    expected_frames = (len(x) * 24000 // rate_in) // frames.FRAME_SAMPLES   # the partial last frame is dropped
    assert len(y) == expected_frames * frames.FRAME_SAMPLES
    assert np.abs(y).max() > 0
