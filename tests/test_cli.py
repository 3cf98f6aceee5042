"""The gr-largesc command line: info, codec, demo."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from gnuradio.largesc.app import cli
from gnuradio.largesc.core import audio_io, codec

REPO = Path(__file__).resolve().parents[1]


def test_info_lists_profiles(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    for name in ("kyutai", "kyutai-arch", "tiny", "mini", "mini-v1"):
        assert name in out
    assert "gnuradio" in out and "HF cache" in out


def test_info_says_which_mini_parts_are_here(tmp_path, monkeypatch):
    from gnuradio.largesc.core.recovery import lm
    v1 = codec.mini_weights_dir(profile="mini-v1")
    assert cli._mini_status(v1, with_lm=True).startswith("available: codec, LM, LoRA")
    assert cli._mini_status(codec.mini_weights_dir()) == f"available: codec ({codec.mini_weights_dir().parent})"
    monkeypatch.setattr(lm, "MINI_LORA_DIR", tmp_path)           # an install without the adapter
    assert cli._mini_status(v1, with_lm=True).endswith("missing: LoRA")


def test_demo_runs_the_lossy_loopback_and_writes_wav_of_input_length(tmp_path, capsys):
    assert cli.main(["demo", "--profile", "tiny", "--out-dir", str(tmp_path), "--loss", "0.3"]) == 0
    y, rate = audio_io.read_wav(tmp_path / "decoded.wav")
    x, rate_in = audio_io.read_wav(cli.BUNDLED_CLIP)
    assert rate == 24000 and len(y) == len(x) * 24000 // rate_in
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["profile"] == "tiny" and report["recovery"] == "moshi"
    assert report["frames_out"] == report["frames"] and report["packets_dropped"] > 0
    assert 550.0 <= report["payload_bps"] <= 1100.0 and report["header_bps"] > 0
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("# gr-largesc demo report") and "latency stage" in md and "random weights" in md
    assert report["payload_bps"] + report["header_bps"] == pytest.approx(report["on_air_bps"])
    assert f"= {report['on_air_bps']} bps" in md and "packet format compact" in md
    # the picture: a PNG beside report.md, linked from it, drawing the frames the report counts lost
    png = tmp_path / "report.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "](report.png)" in md
    assert report["png"] == str(png) and report["png_frames_lost"] == report["frames_lost"] > 0


def test_demo_default_is_the_trained_mini_profile(tmp_path, capsys):
    """The README's main command runs the trained `mini` (v2) codec, and `auto` recovery is its
    measured best strategy (the latent predictor; it has no LM yet), overlapped with the decoder."""
    assert cli.main(["demo", "--out-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["profile"] == "mini" and report["frames_out"] == report["frames"]
    assert report["recovery"] == "latent"
    md = (tmp_path / "report.md").read_text()
    assert "random weights" not in md and "| profile / recovery | mini / latent |" in md
    assert "| overlap (look-ahead within the hold) | -80.0 |" in md


def test_codec_command_prefix_rate(tmp_path, capsys):
    out = tmp_path / "y.wav"
    assert cli.main(["codec", "--in", str(cli.BUNDLED_CLIP), "--out", str(out), "--profile", "tiny",
                     "--codebooks", "4", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["payload_bps"] == 550.0 and summary["frames"] == -(-len(audio_io.read_wav(out)[0]) // 1920)


def test_codec_command_errors_are_clear(tmp_path, capsys):
    assert cli.main(["codec", "--in", str(tmp_path / "missing.wav"), "--out", str(tmp_path / "o.wav")]) == 2
    assert "missing.wav" in capsys.readouterr().err
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000garbage")
    assert cli.main(["codec", "--in", str(bad), "--out", str(tmp_path / "o.wav")]) == 2
    assert "not a PCM wav" in capsys.readouterr().err


def test_wav_roundtrip_and_resampling(tmp_path):
    x = (0.5 * np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000)).astype(np.float32)
    audio_io.write_wav(tmp_path / "a.wav", x, 16000)
    y, rate = audio_io.read_wav(tmp_path / "a.wav")
    assert rate == 16000 and np.max(np.abs(y - x)) < 1e-4
    z = audio_io.to_codec_rate(y, rate)
    assert len(z) == 24000


def test_bootstrap_wrapper_dispatches_to_cli():
    r = subprocess.run([str(REPO / "gr-largesc"), "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and all(c in r.stdout for c in ("demo", "codec", "run", "train-lora"))


def test_demo_default_header_is_lean(tmp_path, capsys):
    """The default packet format (compact, the erasure channel checks frames): at most 16 header
    bits per packet, and at B = 550 at most 700 bps on air (default profile, through the blocks)."""
    assert cli.main(["demo", "--bandwidth", "550", "--out-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["packet_format"] == "compact"
    assert 0 < report["header_bits_per_packet"] <= 16
    assert report["on_air_bps"] <= 700.0 and report["payload_bps"] <= 550.0
    assert "| header bits per packet |" in (tmp_path / "report.md").read_text()
