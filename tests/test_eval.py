"""Evaluation harness (docs/eval/README.md): loss trace rules, LargeSC core simulation, sharding, and a small
end-to-end eval (2 utterances, p in {0, 0.3}, tiny + Opus + Codec 2 1300) with every metric.

The end-to-end tests need the [eval] extra (requirements-eval.txt, installed by
`LARGESC_EXTRAS=eval scripts/install_env.sh`); without it they skip and say what is missing.
"""
import math
import subprocess
import sys

import numpy as np
import pytest

from gnuradio.largesc.evaluation import losstrace, runner, systems
from gnuradio.largesc.evaluation.deps import missing, missing_libs

MISSING = missing()
MISSING_LIBS = missing_libs()
needs_extra = pytest.mark.skipif(
    bool(MISSING or MISSING_LIBS),
    reason=("eval extra not installed (missing: " + ", ".join(MISSING + MISSING_LIBS)
            + "); install with LARGESC_EXTRAS=eval scripts/install_env.sh"))
EVAL_DEPS = ("pesq", "pystoi", "speechmos", "visqol", "faster_whisper", "jiwer", "av", "matplotlib",
             "onnxruntime", "librosa")


# ----------------------------------------------------------------------------- no extra needed
def test_core_never_imports_eval_deps():
    code = ("import sys, gnuradio.largesc\n"
            "from gnuradio.largesc.core import codec, recovery\n"
            "from gnuradio.largesc.core.link import channels, controller, packet, reassembly\n"
            f"bad = [m for m in {EVAL_DEPS!r} if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_slot_rule_last_and_any():
    tr = losstrace.LossTrace(np.array([0, 0, 0, 1, 0, 1, 0, 0], bool), "last")
    # 80 ms packet [0, 80) ends in slot 3 (lost); [80, 160) ends in slot 7 (kept);
    # 40 ms packets end in slots 1, 3, 5, 7
    assert tr.mask(2, 80.0).tolist() == [True, False]
    assert tr.mask(4, 40.0).tolist() == [False, True, True, False]
    assert tr.mask(8, 20.0).tolist() == [False, False, False, True, False, True, False, False]
    tr_any = losstrace.LossTrace(tr.slots, "any")
    assert tr_any.mask(2, 80.0).tolist() == [True, True]
    # past the end of the trace: delivered
    assert not tr.lost(1000.0, 1080.0)


@pytest.mark.parametrize("model", ["bernoulli", "gilbert_elliott"])
def test_trace_is_seeded_and_has_rate_p(model):
    a = losstrace.make_trace("u1", 200.0, model, 0.3, seed=7)
    b = losstrace.make_trace("u1", 200.0, model, 0.3, seed=7)
    c = losstrace.make_trace("u1", 200.0, model, 0.3, seed=8)
    assert a.digest() == b.digest() != c.digest()
    assert abs(a.slots.mean() - 0.3) < 0.05
    # every packet duration sees loss rate ~p under the `last` rule
    for ms in (20.0, 40.0, 80.0):
        n = int(200_000 / ms)
        assert abs(a.mask(n, ms).mean() - 0.3) < 0.06
    assert not losstrace.make_trace("u1", 10.0, model, 0.0, seed=7).slots.any()


def test_shards_partition_the_tasks():
    cfg = runner.Config(systems=("largesc", "opus", "codec2-1300"))
    full = runner.tasks_for(cfg, 5)
    parts = [runner.tasks_for(cfg, 5, (i, 3)) for i in range(3)]
    assert sorted(sum(parts, [])) == sorted(full) and sum(map(len, parts)) == len(full)


def test_largesc_core_chain_lossless_and_lossy():
    from gnuradio.largesc.core.audio_io import read_wav
    from gnuradio.largesc.evaluation import largesc_system, speech
    x, fs = read_wav(speech.BUNDLED)
    x = x[: 2 * fs]
    clean = losstrace.LossTrace.none(200)
    y, info = largesc_system.run(x, clean, profile="tiny", bandwidth_bps=1100, p=0.0, recovery="repeat")
    assert y.shape == x.shape and np.isfinite(y).all()
    assert info["lost"] == 0 and info["frames_lost"] == 0
    assert 550 <= info["payload_bps"] <= 1100 + 1e-6
    lossy = losstrace.LossTrace(np.tile([False, False, False, True], 50))   # every 80 ms packet lost
    y2, info2 = largesc_system.run(x, lossy, profile="tiny", bandwidth_bps=1100, p=1.0, recovery="zero")
    assert info2["lost"] == info2["packets"] and np.isfinite(y2).all()
    fixed = largesc_system.allocations(np.zeros(5), "fixed", 1100, 0.3)
    assert fixed == [(8, 0)] * 5


@pytest.mark.parametrize("fmt,b550_max", [("v1", 1000.0), ("compact", 750.0), ("compact_crc", 800.0)])
def test_largesc_rates_add_up_per_packet_format(fmt, b550_max):
    """payload + header = on air in the eval's info and CSV rows; compact at B = 550 <= 750 bps."""
    from gnuradio.largesc.core.audio_io import read_wav
    from gnuradio.largesc.evaluation import largesc_system, speech
    x, fs = read_wav(speech.BUNDLED)
    x = x[: 2 * fs]
    trace = losstrace.LossTrace(np.tile([False, False, False, False, False, False, False, True], 25))
    for bw, top in ((550.0, b550_max), (1100.0, None)):
        _, info = largesc_system.run(x, trace, profile="tiny", bandwidth_bps=bw, p=0.1, recovery="zero",
                                     packet_format=fmt)
        assert info["payload_bps"] <= bw + 1e-6 and info["header_bps"] > 0
        assert info["payload_bps"] + info["header_bps"] == pytest.approx(info["on_air_bps"])
        if top is not None:
            assert info["on_air_bps"] <= top
    assert 0 < info["frames_lost"] <= info["lost"]


def test_no_uep_keeps_the_payload_rate():
    from gnuradio.largesc.evaluation import largesc_system
    uep = [(4, 0), (8, 0), (6, 3), (5, 2), (8, 3), (4, 4), (4, 0)]
    eq = largesc_system.equal_protection(uep)
    assert all(r == 0 and n <= 8 for n, r in eq)
    assert sum(n for n, _ in eq) == sum(n + r for n, r in uep)
    assert eq == [(4, 0), (8, 0), (8, 0), (8, 0), (8, 0), (8, 0), (7, 0)]
    # on a controller run: the same totals up to the carry left at the end
    act = np.tile([-60.0] * 3 + [-20.0] * 6, 8)
    for p in (0.0, 0.3):
        a = largesc_system.allocations(act, "adaptive", 1100, p)
        b = largesc_system.allocations(act, "no_uep", 1100, p)
        assert all(r == 0 for _, r in b)
        assert 0.97 * sum(map(sum, a)) <= sum(map(sum, b)) <= sum(map(sum, a))


# ----------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def small_eval(tmp_path_factory):
    from gnuradio.largesc.evaluation import main
    out = tmp_path_factory.mktemp("eval")
    args = ["sweep", "--preset", "test", "--profile", "tiny", "--no-cache", "--no-progress", "--seed", "3"]
    assert main(args + ["--out", str(out / "a")]) == 0
    return out, args


@needs_extra
def test_small_eval_csv_schema_and_finite(small_eval):
    out, _ = small_eval
    rows = runner.read_csv(out / "a" / "results.csv")
    header = (out / "a" / "results.csv").read_text().splitlines()[0].split(",")
    assert header == runner.COLUMNS
    assert {r["system"] for r in rows} == {"largesc", "opus", "codec2-1300", "reference"}
    assert {r["p"] for r in rows if r["system"] != "reference"} == {0.0, 0.3}
    assert len({r["utterance"] for r in rows}) == 2
    metrics = {r["metric"] for r in rows}
    assert {"stoi", "pesq_wb", "visqol", "plcmos", "dnsmos_ovrl", "dnsmos_p808"} <= metrics
    assert all(math.isfinite(r["value"]) for r in rows)
    for r in rows:
        if r["system"] == "codec2-1300":
            assert r["payload_bps"] == pytest.approx(1300.0) and r["packet_ms"] == 40.0
        if r["system"] == "largesc":
            assert r["profile"] == "tiny" and r["packet_ms"] == 80.0 and 550 <= r["payload_bps"] <= 1100.01
    assert (out / "a" / "report.md").read_text().count("tiny") >= 2
    assert (out / "a" / "quality_vs_bitrate.png").stat().st_size > 1000


@needs_extra
@pytest.mark.parametrize("system", ["opus", "codec2-1300"])
def test_baselines_degrade_with_loss(small_eval, system):
    out, _ = small_eval
    rows = runner.read_csv(out / "a" / "results.csv")

    def mean(metric, p):
        v = [r["value"] for r in rows if r["system"] == system and r["metric"] == metric and r["p"] == p]
        assert v
        return float(np.mean(v))

    assert mean("plcmos", 0.3) < mean("plcmos", 0.0) or mean("stoi", 0.3) < mean("stoi", 0.0)


@needs_extra
def test_same_seed_same_csv(small_eval):
    from gnuradio.largesc.evaluation import main
    out, args = small_eval
    assert main(args + ["--out", str(out / "b")]) == 0
    assert (out / "a" / "results.csv").read_bytes() == (out / "b" / "results.csv").read_bytes()


@needs_extra
def test_shard_and_merge(small_eval, tmp_path):
    from gnuradio.largesc.evaluation import main
    out, _ = small_eval
    src = runner.read_csv(out / "a" / "results.csv")
    half = [r for r in src if r["system"] in ("opus", "reference")]
    other = [r for r in src if r["system"] not in ("opus", "reference")]
    runner.write_csv(tmp_path / "results.shard-1-of-2.csv", half)
    runner.write_csv(tmp_path / "results.shard-2-of-2.csv", other)
    assert main(["merge", str(tmp_path), "--out", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "results.csv").read_text() == (out / "a" / "results.csv").read_text()
    assert (tmp_path / "m" / "report.md").is_file()


def test_system_table_is_complete():
    for name in ("largesc", "largesc-no-uep", "largesc-fixed-n", "largesc-repeat", "largesc-zero",
                 "largesc-prefix", "opus", "aac", "codec2-700c", "codec2-1300", "codec2-3200"):
        s = systems.get(name)
        assert sum(systems.algorithmic_latency_ms(s).values()) > 0


def test_named_burst_loss_models():
    """gilbert_elliott@400: its own mean burst (5 LargeSC packets), seeded by the name."""
    assert losstrace.parse_model("gilbert_elliott@400") == ("gilbert_elliott", 400.0)
    assert losstrace.parse_model("bernoulli", 160.0) == ("bernoulli", 160.0)
    for bad in ("bernoulli@400", "gilbert_elliott@x", "gilbert_elliott@5", "ge@400", "nope"):
        with pytest.raises(ValueError):
            losstrace.parse_model(bad)
    runs = {}
    for burst in (400, 1000):
        t = losstrace.make_trace("u1", 600.0, f"gilbert_elliott@{burst}", 0.2, seed=7)
        lost = t.slots.astype(int)
        starts = int(np.sum(np.diff(lost) == 1)) + int(lost[0])
        runs[burst] = lost.sum() / max(1, starts) * losstrace.SLOT_MS       # mean burst in ms
        assert abs(lost.mean() - 0.2) < 0.07
    assert 250 < runs[400] < 600 and 650 < runs[1000] < 1500


@needs_extra
def test_bursts_preset_tiny_grid(tmp_path):
    """The `bursts` preset's conditions on a tiny grid: LargeSC (compact format), Opus, Codec 2."""
    from gnuradio.largesc.evaluation import main
    from gnuradio.largesc.evaluation.cli import PRESETS
    assert set(PRESETS["bursts"]["loss_models"]) == {"gilbert_elliott@400", "gilbert_elliott@1000"}
    out = tmp_path / "b"
    assert main(["sweep", "--preset", "bursts", "--profile", "tiny", "--recovery", "repeat", "--speech", "test",
                 "--utterances", "1", "--p", "0.2", "--bandwidths", "550", "--metrics", "stoi",
                 "--systems", "largesc,opus,codec2-1300", "--packet-format", "compact", "--no-cache",
                 "--no-progress", "--no-plots", "--no-flowgraph-latency", "--out", str(out)]) == 0
    rows = runner.read_csv(out / "results.csv")
    assert {(r["system"], r["loss_model"]) for r in rows} == {
        (s, m) for s in ("largesc", "opus", "codec2-1300") for m in ("gilbert_elliott@400", "gilbert_elliott@1000")}
    for r in rows:
        if r["system"] == "largesc":
            assert r["payload_bps"] + r["header_bps"] == pytest.approx(r["on_air_bps"])
            assert r["on_air_bps"] <= 750.0
        else:
            assert r["header_bps"] == "" and r["on_air_bps"] == ""
    report = (out / "report.md").read_text()
    assert "| header rate | on-air rate |" in report and "gilbert_elliott@1000 p=0.2" in report
