"""`gr-largesc run` (run_app): whole loopback on a short wav, headless, tiny profile."""
import json

import numpy as np
import pytest

from gnuradio.largesc.app import loopback, run_app, run_options, run_summary
from gnuradio.largesc.core import audio_io

CLIP = run_options.BUNDLED_CLIP


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory):
    """First 3 s of the bundled clip (16 kHz): 37.5 frames, so the last frame is partial."""
    x, rate = audio_io.read_wav(CLIP)
    path = tmp_path_factory.mktemp("wav") / "short.wav"
    audio_io.write_wav(path, x[: 3 * rate], rate)
    return path


@pytest.fixture(scope="module")
def tiny_wav(short_wav):
    """First 1 s of the clip, for the runs that use the (slower) moshi recovery."""
    x, rate = audio_io.read_wav(short_wav)
    path = short_wav.parent / "tiny.wav"
    audio_io.write_wav(path, x[:rate], rate)
    return path


def opts(wav, out, **kw):
    """Run options; `batch` (several frames per codec call) is faster, but not bit-exact."""
    return {"input": str(wav), "output": str(out), "profile": "tiny", "quiet": True, "batch": True,
            **kw}


def test_lossless_run_loses_nothing_and_keeps_the_length(short_wav, tmp_path):
    s = loopback.run(opts(short_wav, tmp_path / "a.wav", loss=0.0, recovery="zero"))
    y, rate = audio_io.read_wav(tmp_path / "a.wav")
    x, rate_in = audio_io.read_wav(short_wav)
    assert (rate, len(y)) == (rate_in, len(x))
    assert s["frames_lost"] == 0 and s["packets_dropped"] == 0
    assert s["frames"] == s["packets"] == s["frames_out"] >= 38
    assert s["payload_bits"] > 0 and s["header_bits"] > 0
    assert s["payload_bps"] <= 1100.0
    assert set(s["tokens"]) >= {"original"}
    assert s["latency"]["algorithmic_ms"]["frame buffering"] == 80.0
    assert s["latency"]["compute_ms_per_frame"]["encode"]["ms_per_frame"] > 0


def test_lossy_run_loses_about_p(short_wav, tmp_path):
    s = loopback.run(opts(short_wav, tmp_path / "b.wav", loss=0.3, recovery="repeat", seed=4))
    n = s["frames_out"]
    # 40 frames, Bernoulli(0.3): 3 sigma = 0.22; copies can only lower the frame loss
    assert abs(s["channel_loss"] - 0.3) < 0.22
    assert s["lost_fraction"] <= s["channel_loss"] + 1e-9
    assert s["frames_lost"] == s["packets_dropped"] - s["frames_with_copies"]
    assert 0 < s["frames_lost"] < n
    assert s["tokens"].get("generated", 0) > 0


def test_same_seed_same_bytes(tiny_wav, tmp_path):
    a, b, c = (tmp_path / f"{k}.wav" for k in "abc")
    loopback.run(opts(tiny_wav, a, loss=0.3, recovery="moshi", seed=7, batch=False))
    loopback.run(opts(tiny_wav, b, loss=0.3, recovery="moshi", seed=7, batch=False))
    loopback.run(opts(tiny_wav, c, loss=0.3, recovery="moshi", seed=8, batch=False))
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_main_json_and_progress(short_wav, tmp_path, capsys):
    rc = run_app.main(["--in", str(short_wav), "--out", str(tmp_path / "d.wav"), "--profile", "tiny",
                       "--loss", "0.2", "--loss-model", "gilbert", "--burst", "3",
                       "--recovery", "zero", "--json", "--stats-interval", "0.5"])
    assert rc == 0
    cap = capsys.readouterr()
    s = json.loads(cap.out)
    assert s["loss_model"] == "gilbert" and s["frames"] >= 38
    assert "gr-largesc run:" in cap.err
    lines = [json.loads(ln) for ln in cap.err.splitlines() if ln.startswith("{")]
    if lines:                                       # a run shorter than the interval prints none
        assert set(lines[-1]["stats"]) == {"tx", "channel", "rx"}


def test_table_output_and_errors(short_wav, tmp_path, capsys):
    assert run_app.main(["--in", str(short_wav), "--out", str(tmp_path / "e.wav"),
                         "--recovery", "zero", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "| payload bits / bps |" in out and "| latency stage |" in out
    assert run_app.main(["--in", str(tmp_path / "missing.wav"), "--quiet"]) == 2
    assert run_app.main(["--in", str(short_wav), "--loss-model", "trace", "--quiet"]) == 2
    with pytest.raises(ValueError):
        loopback.run({"bogus": 1})


def test_output_at_mimi_rate(short_wav, tmp_path):
    s = loopback.run(opts(short_wav, tmp_path / "g.wav", recovery="zero", out_rate=24000))
    y, rate = audio_io.read_wav(tmp_path / "g.wav")
    x, rate_in = audio_io.read_wav(short_wav)
    assert (rate, len(y)) == (24000, len(x) * 24000 // rate_in)
    assert s["output_rate"] == 24000 and s["output_samples"] == len(y)


def test_trace_model(short_wav, tmp_path):
    trace = tmp_path / "trace.txt"
    trace.write_text("0\n0\n1\n" * 20)
    s = loopback.run(opts(short_wav, tmp_path / "f.wav", loss_model="trace", trace=str(trace),
                         recovery="zero"))
    assert s["packets_dropped"] == s["packets"] // 3
    y, _ = audio_io.read_wav(tmp_path / "f.wav")
    assert np.isfinite(y).all()


def test_phy_channel_same_seed_same_bytes_and_json(tiny_wav, tmp_path, capsys):
    """--channel phy: the PHY's noise is seeded and its bursts sit back to back in the sample
    stream whatever the thread timing, so the same seed gives the same losses and bytes."""
    a, b = tmp_path / "pa.wav", tmp_path / "pb.wav"
    args = ["--in", str(tiny_wav), "--profile", "tiny", "--channel", "phy", "--snr", "13",
            "--taps", "1,0.3,0.1", "--freq-offset", "0.001", "--recovery", "repeat", "--seed", "5",
            "--json", "--quiet"]
    assert run_app.main(args + ["--out", str(a)]) == 0
    s = json.loads(capsys.readouterr().out)
    assert run_app.main(args + ["--out", str(b)]) == 0
    s2 = json.loads(capsys.readouterr().out)
    assert a.read_bytes() == b.read_bytes()
    assert s["packets_dropped"] == s2["packets_dropped"] > 0
    assert s["channel"] == "phy" and s["snr_db"] == 13.0 and s["taps"] == ["1", "0.3", "0.1"]
    assert s["phy_overhead_bits_per_packet"] == 184
    assert s["on_air_bps_phy"] > s["on_air_bps"] and s["channel_symbol_rate"] > s["on_air_bps_phy"]


def test_phy_channel_option_errors(tiny_wav, tmp_path):
    base = ["--in", str(tiny_wav), "--out", str(tmp_path / "x.wav"), "--channel", "phy", "--quiet"]
    assert run_app.main(base + ["--taps", "1,zz"]) == 2
    assert run_app.main(base + ["--taps", "0,0"]) == 2
    assert run_app.main(base + ["--freq-offset", "0.7"]) == 2


@pytest.mark.parametrize("fmt,on_air_max", [("v1", 1000.0), ("compact", 750.0), ("compact_crc", 800.0)])
def test_packet_format_rates_add_up(short_wav, tmp_path, fmt, on_air_max):
    """payload + header = on air (JSON and text); compact at B = 550 stays <= 750 bps."""
    s = loopback.run(opts(short_wav, tmp_path / "f.wav", loss=0.2, recovery="zero", bandwidth=550.0,
                          packet_format=fmt, seed=2))
    assert s["packet_format"] == fmt and s["d_max"] == s["d"] == 1      # d_max defaults to d
    assert s["payload_bps"] <= 550.0
    assert abs(s["payload_bps"] + s["header_bps"] - s["on_air_bps"]) < 1e-9
    assert s["on_air_bps"] <= on_air_max
    assert s["frames_out"] == s["frames"] and s["bad_packets"] == 0
    text = run_summary.format_summary(s)
    assert f"{s['payload_bps']} + {s['header_bps']} = {s['on_air_bps']} bps" in text
    assert f"packet format {fmt}" in text


def test_packet_format_option_errors(short_wav, tmp_path):
    with pytest.raises(SystemExit):
        run_options.build_parser().parse_args(["--packet-format", "v2"])
    with pytest.raises(ValueError, match="packet-format"):
        loopback.run(opts(short_wav, tmp_path / "g.wav", packet_format="v2"))


def test_frame_view_strip_counts_what_the_receiver_lost(tmp_path):
    from gnuradio.largesc.app.frame_view import lost_frames, write_frame_view
    from gnuradio.largesc.core.link import frames as F
    states = np.full((20, 8), F.STATE_ORIGINAL, np.uint8)
    states[[3, 4, 11], :] = F.STATE_GENERATED            # codebook 0 lost, then filled: lost
    states[7, 0] = F.STATE_COPY                           # codebook 0 from a copy: not lost
    states[7, 1:] = F.STATE_LOST
    assert lost_frames(states).nonzero()[0].tolist() == [3, 4, 11]
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    drawn = write_frame_view(tmp_path / "v.png", x, 16000, x, 16000, states)
    assert drawn == {"frames": 20, "frames_lost": 3}
    assert (tmp_path / "v.png").read_bytes()[:4] == b"\x89PNG"


def test_run_png_option(short_wav, tmp_path):
    s = loopback.run(opts(short_wav, tmp_path / "p.wav", loss=0.3, recovery="repeat", seed=2))
    assert s["png"] == str(tmp_path / "p.png") and s["png_frames_lost"] == s["frames_lost"]
    s = loopback.run(opts(short_wav, tmp_path / "q.wav", recovery="zero", png="none"))
    assert "png" not in s and not (tmp_path / "q.png").exists()


def test_moshi_mmse_runs_in_the_flowgraph(tiny_wav, tmp_path):
    """The soft-decision mode of the LM recovery, end to end on `tiny` (every frame out, some generated)."""
    s = loopback.run(opts(tiny_wav, tmp_path / "m.wav", loss=0.3, recovery="moshi-mmse", seed=3, png="none"))
    assert s["recovery"] == "moshi-mmse" and s["frames_out"] == s["frames"]
    assert s["tokens"]["generated"] > 0
