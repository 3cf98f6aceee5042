"""The standard report's pieces (docs/eval/standard-mini): its preset, the Opus baselines it adds
(without FEC; 1.5.2 with DRED), the German speech fetch, the paired comparison table and the
headline figure's win region.

The sweep itself needs the training corpus (`gr-largesc prepare-corpus --no-synth`) and 1-2 hours;
here the same engine runs the preset's systems and metrics on a tiny grid.
"""
import math

import numpy as np
import pytest

from gnuradio.largesc.evaluation import headline, losstrace, report, runner, systems
from gnuradio.largesc.evaluation.deps import missing, missing_libs

needs_extra = pytest.mark.skipif(bool(missing() or missing_libs()),
                                 reason="eval extra not installed: LARGESC_EXTRAS=eval scripts/install_env.sh")


def _opus_dnn_built() -> bool:
    from gnuradio.largesc.core.codec import opus_dnn
    return opus_dnn.library_path().is_file()


def test_standard_preset_is_the_issue_grid():
    from gnuradio.largesc.evaluation.cli import PRESETS
    from gnuradio.largesc.evaluation.speech import STANDARD_DE, STANDARD_EN, STANDARD_FR
    pre = PRESETS["standard"]
    assert pre["speech"] == "standard" and STANDARD_EN + 8 + STANDARD_FR + STANDARD_DE == 30
    assert pre["ps"] == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    assert pre["bandwidths"] == (550.0, 1100.0, 2062.5)
    assert set(pre["loss_models"]) == {"bernoulli", "gilbert_elliott@160", "gilbert_elliott@1000"}
    assert {"largesc", "largesc-no-uep", "largesc-repeat", "largesc-prefix", "opus", "opus-nofec", "opus-dred",
            "aac", "codec2-700c", "codec2-1300", "codec2-3200", "reference"} == set(pre["systems"])
    assert set(pre["metrics"]) == {"stoi", "pesq_wb", "visqol", "plcmos", "wer_base"}
    for name in pre["systems"]:
        systems.get(name)


def _clip(seconds=2.0):
    from gnuradio.largesc.core.audio_io import read_wav
    from gnuradio.largesc.evaluation.speech import BUNDLED
    x, rate = read_wav(BUNDLED)
    assert rate == 16000
    return x[: int(seconds * rate)]


@needs_extra
def test_opus_sends_no_lbrr_at_6_kbps():
    """libopus spends no bits on in-band FEC (LBRR) at 6 kbps: `opus` and `opus-nofec` send the
    same packets there, which the report states (not a harness fault)."""
    from gnuradio.largesc.evaluation import baselines
    x = baselines._i16(_clip(3.0))
    lib = baselines._opus()
    on, _, _ = baselines._opus_encode(lib, x, 6000, 0.3, True, 20)
    off, _, _ = baselines._opus_encode(lib, x, 6000, 0.3, False, 20)
    assert on == off


@needs_extra
@pytest.mark.skipif(not _opus_dnn_built(), reason="opus-dnn library not built (scripts/build_opus_dnn.sh)")
def test_opus_dred_fills_lost_packets_from_the_next_packet():
    from gnuradio.largesc.evaluation import baselines
    from gnuradio.largesc.evaluation.metrics import stoi
    x = _clip(5.0)
    tr = losstrace.make_trace("dred", len(x) / 16000, "bernoulli", 0.3, 0)
    y, info = baselines.opus_dred(x, tr, bitrate=20000, p_hint=0.3)
    assert info["library"].startswith("libopus 1.5") and len(y) == len(x) and np.all(np.isfinite(y))
    assert info["lost"] > 10 and info["concealed_dred"] > 0
    assert info["concealed_dred"] + info["concealed_plc"] >= info["lost"] - 1
    y0, info0 = baselines.opus_dred(x, tr, bitrate=20000, p_hint=0.0)   # no loss hint: no DRED bits
    assert info0["concealed_dred"] == 0
    assert stoi(x, y) > stoi(x, y0) - 0.02
    assert 15000 < info["payload_bps"] < 25000


def test_german_fetch_failure_is_a_logged_skip(tmp_path, monkeypatch, caplog):
    from gnuradio.largesc.evaluation import german

    def offline(dst, timeout_s):
        raise OSError("network unreachable")
    monkeypatch.setattr(german, "_download", offline)
    assert german.prompts_dir(tmp_path) is None
    assert german.clips(tmp_path, 5) == []
    assert "German clips skipped" in caplog.text


def test_german_fetch_rejects_a_wrong_file(tmp_path, monkeypatch, caplog):
    from gnuradio.largesc.evaluation import german

    def fake(dst, timeout_s):
        dst.write_bytes(b"not the package")
    monkeypatch.setattr(german, "_download", fake)
    assert german.prompts_dir(tmp_path) is None
    assert "sha256 mismatch" in caplog.text
    assert not (tmp_path / "src" / german.PACKAGE / german.DEB).exists()


def test_german_package_unpacks_its_prompts_only(tmp_path):
    """The .deb is read in Python (ar archive + data.tar): only sounds/de/*.gsm come out."""
    import io
    import tarfile

    from gnuradio.largesc.evaluation import german
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tf:
        for name, data in (("./usr/share/asterisk/sounds/de/hallo.gsm", b"gsm1"),
                           ("./usr/share/asterisk/sounds/de/digits/1.gsm", b"sub"),
                           ("./usr/share/doc/asterisk-prompt-de/copyright", b"GPL-2")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))

    def member(name, data):
        head = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}".encode() + b"`\n"
        return head + data + (b"\n" if len(data) % 2 else b"")
    deb = tmp_path / "p.deb"
    deb.write_bytes(b"!<arch>\n" + member("debian-binary", b"2.0\n") + member("control.tar.xz", b"x")
                    + member("data.tar.xz", buf.getvalue()))
    german._unpack(deb, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["hallo.gsm"]
    assert (tmp_path / "out" / "hallo.gsm").read_bytes() == b"gsm1"
    (tmp_path / "bad.deb").write_bytes(b"PK not a deb")
    with pytest.raises(ValueError):
        german._unpack(tmp_path / "bad.deb", tmp_path / "out2")


def _rows(values: dict, lm="bernoulli", p=0.3, metric="stoi"):
    """values: {(system, B or None): [per-utterance values]} -> results rows."""
    out = []
    for (name, b), vs in values.items():
        for i, v in enumerate(vs):
            rate = 700.0 if b == 550.0 else (1300.0 if b else 6000.0)
            out.append({"utterance": f"u{i}", "system": name, "loss_model": lm, "p": p,
                        "bandwidth_bps": "" if b is None else b, "metric": metric, "value": v,
                        "payload_bps": rate, "on_air_bps": rate + 50 if b else "", "header_bps": 50 if b else ""})
    return out


def test_paired_difference_is_per_utterance():
    rows = _rows({("largesc", 550.0): [0.8, 0.7, 0.9], ("codec2-700c", None): [0.7, 0.6, 0.8]})
    mu, lo, hi, n = report.paired(rows, "largesc", "codec2-700c", "bernoulli", 0.3, 550.0, "stoi")
    assert n == 3 and mu == pytest.approx(0.1) and lo == pytest.approx(0.1) and hi == pytest.approx(0.1)
    mu, lo, hi, n = report.paired(rows, "largesc", "codec2-700c", "bernoulli", 0.3, 1100.0, "stoi")
    assert n == 0 and math.isnan(mu)
    sec = "\n".join(report.paired_section(rows, [550.0]))
    assert "**+0.100 [+0.100, +0.100] (3)**" in sec


def test_win_region_needs_a_baseline_that_fits():
    pts = {"largesc": [(700.0, 0.80, 0.01, 550.0), (1250.0, 0.85, 0.01, 1100.0)],
           "codec2-700c": [(700.0, 0.75, 0.01, None)], "codec2-1300": [(1300.0, 0.83, 0.01, None)],
           "opus": [(6000.0, 0.90, 0.01, None)]}
    assert headline.win_intervals(pts, lower_is_better=False) == [(700.0, 6000.0)]
    # a baseline better at the same rate: no win there; LargeSC alone below every baseline: no win
    pts["codec2-700c"] = [(700.0, 0.81, 0.01, None)]
    pts["largesc"].insert(0, (600.0, 0.5, 0.01, 550.0))
    assert headline.win_intervals(pts, lower_is_better=False) == [(1250.0, 6000.0)]
    # lower is better (WER): the same points negated
    neg = {k: [(x, -m, e, b) for x, m, e, b in v] for k, v in pts.items()}
    assert headline.win_intervals(neg, lower_is_better=True) == [(1250.0, 6000.0)]


def test_headline_figure_needs_both_loss_rates(tmp_path):
    pytest.importorskip("matplotlib")
    one = _rows({("largesc", 550.0): [0.8, 0.7], ("opus", None): [0.9, 0.9]})
    assert headline.plot(one, tmp_path / "h.png") is None            # p = 0.3 only
    both = one + _rows({("largesc", 550.0): [0.9, 0.8], ("opus", None): [0.95, 0.9]}, p=0.0)
    assert headline.plot(both, tmp_path / "h.png").stat().st_size > 10_000


@needs_extra
def test_standard_preset_systems_run_through_the_engine(tmp_path):
    """The preset's new systems and its metrics (Whisper-base WER included) on a tiny grid."""
    from gnuradio.largesc.evaluation import main
    out = tmp_path / "s"
    names = "largesc,opus-nofec" + (",opus-dred" if _opus_dnn_built() else "") + ",reference"
    assert main(["sweep", "--preset", "standard", "--profile", "tiny", "--recovery", "repeat", "--speech", "test",
                 "--utterances", "1", "--p", "0,0.3", "--bandwidths", "550", "--loss-models", "bernoulli",
                 "--metrics", "stoi,wer_base", "--systems", names, "--no-cache", "--no-progress",
                 "--no-flowgraph-latency", "--out", str(out)]) == 0
    rows = runner.read_csv(out / "results.csv")
    assert {r["metric"] for r in rows} == {"stoi", "wer_base"}
    assert {r["system"] for r in rows} == set(names.split(","))
    ref_wer = [r["value"] for r in rows if r["system"] == "reference" and r["metric"] == "wer_base"]
    assert ref_wer and ref_wer[0] < 0.2                      # Whisper base reads the clean clip
    rep = (out / "report.md").read_text()
    assert "WER (Whisper base, English clips)" in rep and "paired by utterance" in rep
    assert "headline.png" in rep and (out / "headline.png").is_file()
    import json
    meta = json.loads((out / "meta.json").read_text())
    assert meta["metrics"] == ["stoi", "wer_base"] and len(meta["runs"]) == 1


@needs_extra
def test_a_killed_sweep_merges_into_a_partial_report(tmp_path, monkeypatch):
    """The paper grid runs in pieces: a sweep stopped half way still gives a report of the tasks
    that finished, marked partial."""
    from gnuradio.largesc.evaluation import main
    real, calls = runner.run_task, []

    def dies_on_the_third(c, u, s):
        if len(calls) == 2:
            raise KeyboardInterrupt("stopped")
        calls.append(s)
        return real(c, u, s)
    monkeypatch.setattr(runner, "run_task", dies_on_the_third)
    out = tmp_path / "s"
    args = ["sweep", "--preset", "test", "--profile", "tiny", "--recovery", "repeat", "--utterances", "1",
            "--p", "0.3", "--metrics", "stoi", "--systems", "codec2-1300,opus,reference", "--scheduler", "none",
            "--no-cache", "--no-progress", "--no-flowgraph-latency", "--out", str(out)]
    with pytest.raises(KeyboardInterrupt):
        main(args)
    assert (out / "meta.partial.json").is_file() and not (out / "results.csv").exists()
    assert main(["merge", str(out), "--out", str(tmp_path / "m")]) == 0
    rows = runner.read_csv(tmp_path / "m" / "results.csv")
    assert {r["system"] for r in rows} == {"codec2-1300", "opus"}
    assert "**Partial:** 2 of 3 (utterance, system) tasks finished" in (tmp_path / "m" / "report.md").read_text()
    monkeypatch.setattr(runner, "run_task", real)
    assert main(args) == 0                                   # resumed: the finished sweep drops the partial meta
    assert not (out / "meta.partial.json").exists() and (out / "results.csv").is_file()
