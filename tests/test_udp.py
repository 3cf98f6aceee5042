"""examples/udp_tx.grc and udp_rx.grc: TX and RX in two processes over UDP on 127.0.0.1."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from flowgraph_util import compile_grc

from gnuradio.largesc.core import audio_io
from gnuradio.largesc.core.link import frames

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "python" / "largesc" / "data" / "speech_librivox_16k.wav"


def _free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_udp_tx_and_rx_in_two_processes(tmp_path):
    out = tmp_path / "gen"
    out.mkdir()
    tx_py, rx_py = compile_grc(REPO / "examples" / "udp_tx.grc", tmp_path, out), compile_grc(REPO / "examples" / "udp_rx.grc", tmp_path, out)
    x, rate = audio_io.read_wav(CLIP)
    wav_in, wav_out = tmp_path / "in.wav", tmp_path / "out.wav"
    audio_io.write_wav(wav_in, x[: 2 * rate], rate)               # 2 s, 25 frames, sent in real time
    port, fb_port = str(_free_udp_port()), str(_free_udp_port())
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    net = ["-H", "127.0.0.1", "-P", port, "-F", fb_port, "-r", str(rate), "-p", "tiny", "-s", "1"]
    log = tmp_path / "udp_rx.log"                               # a file: a full pipe would block RX
    with open(log, "w") as logf:
        rx = subprocess.Popen([sys.executable, str(rx_py), "-o", str(wav_out), "-c", "repeat"] + net,
                              stdout=logf, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            t0 = time.monotonic()
            while "listening" not in log.read_text():             # RX has started its flowgraph
                assert rx.poll() is None, "udp_rx ended before it listened: " + log.read_text()[-3000:]
                assert time.monotonic() - t0 < 120, "udp_rx did not start"
                time.sleep(0.1)
            tx = subprocess.run([sys.executable, str(tx_py), "-i", str(wav_in), "-b", "1100"] + net,
                                capture_output=True, text=True, timeout=180, env=env)
            assert tx.returncode == 0, tx.stdout[-3000:] + tx.stderr[-3000:]
            rx.wait(timeout=120)                                    # RX ends by itself after eos
        finally:
            if rx.poll() is None:
                rx.kill()
                rx.wait()
    rest = log.read_text()
    assert rx.returncode == 0, rest[-3000:]
    # the loss reports crossed the second UDP port (25 frames, one report per 12 frames)
    report = [ln for ln in tx.stdout.splitlines() if ln.startswith("udp_tx:")]
    assert report and "received 0 loss" not in report[-1], tx.stdout[-2000:]
    assert "udp_rx: received" in rest, rest[-2000:]
    y, rate_out = audio_io.read_wav(wav_out)
    frame_in = rate * frames.FRAME_SAMPLES // frames.SAMPLE_RATE
    n = 2 * rate
    # as the sim examples: whole frames only (the GRC examples do not pad their input)
    assert rate_out == rate
    assert (n // frame_in - 2) * frame_in < len(y) <= n
    assert np.isfinite(y).all() and np.abs(y).max() > 0
