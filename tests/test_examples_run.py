"""The no-GUI end-to-end example runs headless: on `tiny` with the LM path, and with its own
defaults (the default profile and `auto` recovery); tests/test_grc.py compiles every example."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from flowgraph_util import compile_grc as grcc

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
CLIP = REPO / "python" / "largesc" / "data" / "speech_librivox_16k.wav"


@pytest.mark.parametrize("model_args", [["-p", "tiny", "-c", "moshi"], []], ids=["tiny-moshi", "defaults"])
def test_sim_erasure_loopback_runs_headless(tmp_path, model_args):
    from gnuradio.largesc.core import audio_io
    from gnuradio.largesc.core.link import frames
    script = grcc(EXAMPLES / "sim_erasure_loopback.grc", tmp_path)
    x, rate = audio_io.read_wav(CLIP)
    wav_in, wav_out = tmp_path / "in.wav", tmp_path / "out.wav"
    audio_io.write_wav(wav_in, x[: 2 * rate], rate)               # 2 s, 25 frames
    r = subprocess.run([sys.executable, str(script), "-i", str(wav_in), "-o", str(wav_out),
                        "-r", str(rate), "-b", "1100", "-l", "0.3", "-m", "bernoulli", "-s", "3", *model_args],
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    y, rate_out = audio_io.read_wav(wav_out)
    frame_in = rate * frames.FRAME_SAMPLES // frames.SAMPLE_RATE
    n = 2 * rate
    # whole frames only: the resampler's filter tail costs the input's last frame (the file is
    # not padded here, gr-largesc run pads it), and RX's resampler keeps a few ms more
    assert rate_out == rate
    assert (n // frame_in - 2) * frame_in < len(y) <= n
    assert np.isfinite(y).all() and np.abs(y).max() > 0
