#!/usr/bin/env python3
"""Soak test of the simulated loopback (docs/reliability.md): stream a looped clip for a long time, unthrottled,
and watch memory, per-frame latency and frame accounting.

    .venv/bin/python scripts/soak.py --profile mini --recovery repeat --channel erasure --loss 0.1 \\
        --minutes 60 --out docs/soak/mini_erasure_60min

The flowgraph is `gr-largesc run`'s (loopback.loopback_flowgraph, same blocks and options), with
two substitutions so that an hour of audio needs no hour-long buffers: the source is the clip
(default: the bundled 5.3 s speech clip) in a repeating vector source cut by `head` to
--minutes of audio (plus run_app's two padding frames), and the sink only counts samples
and checks that they are finite. Output is at 24 kHz by default (no output resampler), so the
sample count is exactly frames x 1920.

Instrumentation (Python wrappers around the core calls, as largesc_tx/largesc_rx time their
stages; nothing in the blocks changes):
- TX, packetizer push: frame index, wall time, the 8 tokens sent;
- RX, depacketizer (Reassembler frames handed to the block): the frame index must be the next
  one (0, 1, 2, ... across 12-bit sequence wrap-arounds), and every codebook the frame says it
  received (original or copy) must carry the token TX sent for that frame and codebook;
- RX, decoder input: the k-th frame decoded must again carry frame k's received tokens (token
  recovery kept the order and left known tokens alone), and its transit time (TX packetizer ->
  RX decoder done) is recorded; backlog = frames packetized - frames decoded;
- compute time per frame of each stage (encode, controller + packetizer, recovery, decode).
Every --sample-seconds a sampler thread records process RSS (psutil, else /proc/self/status
VmRSS), the counters and the per-interval latency statistics.

Criteria (soak.json "criteria", exit status 1 if one fails):
- frames: TX frames = the audio's frames (plus up to run_app's two padding frames, which the
  resamplers' filters partly keep); RX depacketizer, token recovery and decoder each put out
  exactly as many frames as TX sent; sink samples = frames x 1920 x out_rate / 24 kHz;
- order: no frame index out of sequence, no token mismatch at the depacketizer or the decoder;
- finite: no NaN / inf output sample;
- memory: RSS growth after warm-up < --max-growth-pct (5 %). Warm-up is the first
  --warmup-fraction (10 %) of the run's wall time (at least 3 samples); growth compares the
  median RSS of the last 5 % of samples with the median of the 5 % right after warm-up;
- the run finished (no stall: decoded frames advance at least every --stall-s seconds).

Outputs in --out: soak.csv (one row per sample; merged into at most --max-rows rows, cumulative
columns last value, means averaged, maxima max), soak.png (matplotlib, if installed), soak.json
(options, criteria, run_app's summary of the run, RSS and latency figures).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("NO_TORCH_COMPILE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

K = 8
CSV_COLUMNS = ["elapsed_s", "audio_s_processed", "frames_in", "frames_out", "rss_mb",
               "backlog_frames", "transit_ms_mean", "transit_ms_p95", "transit_ms_max",
               "compute_ms_frame", "encode_ms", "controller_ms", "recovery_ms", "decode_ms",
               "compute_call_ms_max", "rtf_interval", "dep_pending_frames", "packets_sent",
               "packets_dropped", "frames_lost", "threads"]
MEAN_COLUMNS = {"transit_ms_mean", "compute_ms_frame", "encode_ms", "controller_ms",
                "recovery_ms", "decode_ms", "rtf_interval"}
MAX_COLUMNS = {"rss_mb", "backlog_frames", "transit_ms_p95", "transit_ms_max",
               "compute_call_ms_max", "dep_pending_frames", "threads"}


# ----------------------------------------------------------------------------- memory
def rss_mb() -> float:
    """Resident set size of this process in MB (psutil, else /proc/self/status)."""
    try:
        import psutil
        return psutil.Process().memory_info().rss / 2 ** 20
    except ImportError:
        pass
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def thread_count() -> int:
    return threading.active_count() if not Path("/proc/self/task").exists() \
        else len(os.listdir("/proc/self/task"))


# ----------------------------------------------------------------------------- blocks
def count_sink():
    """A float sink that counts samples and non-finite ones (an hour of audio, no buffer)."""
    from gnuradio import gr

    class _count_sink(gr.sync_block):
        def __init__(self):
            gr.sync_block.__init__(self, name="soak_count_sink", in_sig=[np.float32], out_sig=None)
            self.samples = 0
            self.nonfinite = 0
            self.peak = 0.0

        def work(self, input_items, output_items):
            x = input_items[0]
            fin = np.isfinite(x)
            if not fin.all():
                self.nonfinite += int((~fin).sum())
                x = x[fin]
            if len(x):
                self.peak = max(self.peak, float(np.abs(x).max()))
            self.samples += len(input_items[0])
            return len(input_items[0])

    return _count_sink()


# ----------------------------------------------------------------------------- probe
class _Stage:
    """Compute time of one stage between two samples: total, calls, max call."""

    def __init__(self):
        self.total_ms = self.max_ms = 0.0

    def add(self, ms):
        self.total_ms += ms
        self.max_ms = max(self.max_ms, ms)

    def take(self):
        out = (self.total_ms, self.max_ms)
        self.total_ms = self.max_ms = 0.0
        return out


class Probe:
    """Wraps the loopback's core calls (see the module doc): frame order, token content,
    transit time and compute time per stage. Memory is bounded by the frames in flight."""

    MAX_ERRORS_KEPT = 20

    def __init__(self, tb):
        self.tb = tb
        self.lock = threading.Lock()
        self.sent = {}            # frame index -> (t_push, tokens) until the depacketizer emits it
        self.emitted = {}         # frame index -> (t_push, tokens, known) until decoded
        self.pushed = 0           # frames packetized (TX)
        self.reassembled = 0      # frames the depacketizer emitted
        self.decoded = 0          # frames the decoder took
        self.next_index = 0
        self.checked_tokens = 0   # known tokens compared (depacketizer + decoder)
        self.errors = {"order": 0, "unknown_frame": 0, "content_rx": 0, "content_decoder": 0}
        self.error_samples = []
        self.transit_ms = []      # since the last sample
        self.stages = {k: _Stage() for k in ("encode", "controller", "recovery", "decode")}
        self._install()

    # -- errors
    def _error(self, kind, text):
        self.errors[kind] += 1
        if len(self.error_samples) < self.MAX_ERRORS_KEPT:
            self.error_samples.append(f"{kind}: {text}")

    # -- observers (gr_support/stage_timing.py): each block reports its stage calls
    def _install(self):
        tx, rx = self.tb.tx, self.tb.rx
        tx.encoder.stage_observers.add(self._on_stage)
        tx.controller.stage_observers.add(self._on_stage)
        rx.depacketizer.stage_observers.add(self._on_stage)
        rx.recovery.stage_observers.add(self._on_stage)
        rx.decoder.stage_observers.add(self._on_stage)

    def _on_stage(self, event):
        if event.stage == "reassembly":
            self._on_frames(event.info["frames"])
            return
        self.stages[event.stage].add(event.seconds * 1e3)
        if event.stage == "controller":
            with self.lock:
                self.sent[event.info["frame_index"]] = (time.perf_counter(),
                                                        tuple(int(t) for t in event.info["tokens"][:K]))
                self.pushed += 1
        elif event.stage == "decode":
            self._on_decoded(np.asarray(event.info["codes"]), time.perf_counter())

    def _on_frames(self, frames_):
        from gnuradio.largesc.core.link.frames import KNOWN_STATES
        with self.lock:
            for f in frames_:
                if f.index != self.next_index:
                    self._error("order", f"depacketizer emitted frame {f.index}, expected "
                                         f"{self.next_index}")
                self.next_index = f.index + 1
                sent = self.sent.pop(f.index, None)
                if sent is None:
                    self._error("unknown_frame", f"frame {f.index} emitted but never sent")
                    t_push, toks = float("nan"), (0,) * K
                else:
                    t_push, toks = sent
                known = tuple(s in KNOWN_STATES for s in f.states)
                for c in range(K):
                    if known[c]:
                        self.checked_tokens += 1
                        if sent is not None and int(f.tokens[c]) != toks[c]:
                            self._error("content_rx", f"frame {f.index} codebook {c}: got "
                                                      f"{f.tokens[c]}, sent {toks[c]}")
                self.emitted[f.index] = (t_push, toks, known)
                self.reassembled += 1

    def _on_decoded(self, codes, t_done):
        with self.lock:
            n = codes.shape[1] if codes.ndim == 2 else 0
            for j in range(n):
                k = self.decoded + j
                entry = self.emitted.pop(k, None)
                if entry is None:
                    self._error("order", f"decoder got frame {k} before the depacketizer emitted it")
                    continue
                t_push, toks, known = entry
                for c in range(min(K, codes.shape[0])):
                    if known[c]:
                        self.checked_tokens += 1
                        if int(codes[c, j]) != toks[c]:
                            self._error("content_decoder", f"decoded frame {k} codebook {c}: "
                                                           f"{int(codes[c, j])}, sent {toks[c]}")
                if math.isfinite(t_push):
                    self.transit_ms.append((t_done - t_push) * 1e3)
            self.decoded += n

    # -- sampling
    def take(self):
        """(counters, transit list, {stage: (total_ms, max_ms)}) since the last call."""
        with self.lock:
            transit, self.transit_ms = self.transit_ms, []
            counts = {"pushed": self.pushed, "reassembled": self.reassembled,
                      "decoded": self.decoded, "in_flight": len(self.sent) + len(self.emitted)}
        return counts, transit, {k: s.take() for k, s in self.stages.items()}


# ----------------------------------------------------------------------------- sampler
class Sampler:
    """Thread that appends one row per --sample-seconds (and a last one at stop)."""

    def __init__(self, tb, probe, interval_s, stall_s):
        self.tb, self.probe, self.interval_s, self.stall_s = tb, probe, interval_s, stall_s
        self.rows = []
        self.stop_ev = threading.Event()
        self.stalled = False
        self.t0 = time.monotonic()
        self._last = {"t": self.t0, "frames": {"encode": 0, "controller": 0, "recovery": 0,
                                               "decode": 0}, "decoded": 0}
        self._progress_t = self.t0
        self._progress_n = -1
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self.t0 = self._last["t"] = self._progress_t = time.monotonic()
        self.thread.start()

    def _loop(self):
        while not self.stop_ev.wait(self.interval_s):
            self.sample()
            if self._stall_check():
                self.stalled = True
                self.tb.stop()
                return

    def _stall_check(self):
        n = self.probe.decoded
        now = time.monotonic()
        if n != self._progress_n:
            self._progress_n, self._progress_t = n, now
            return False
        return now - self._progress_t > self.stall_s

    def finish(self):
        self.stop_ev.set()
        self.thread.join()
        self.sample()

    def sample(self):
        from gnuradio.largesc.core.link import frames
        now = time.monotonic()
        counts, transit, stages = self.probe.take()
        tb = self.tb
        ts, rs = tb.tx.get_stats(), tb.rx.get_stats()
        dep = rs["depacketizer"]
        frames_now = {"encode": ts["encoder"]["frames"], "controller": ts["controller"]["frames"],
                      "recovery": rs["recovery"].get("frames_in", 0), "decode": rs["decoder"]["frames"]}
        per_frame = {}
        for k, (total_ms, _) in stages.items():
            df = frames_now[k] - self._last["frames"][k]
            per_frame[k] = total_ms / df if df > 0 else 0.0
        dt = now - self._last["t"]
        dec_frames = counts["decoded"] - self._last["decoded"]
        ch = tb.channel.get_stats()
        if "tx" in ch:                                    # PHY
            sent, dropped = ch["tx"]["packets"], max(0, ch["tx"]["packets"] - ch["rx"]["packets"])
        else:
            sent, dropped = ch["sent"], ch["dropped"]
        tr = np.asarray(transit) if transit else None
        row = {"elapsed_s": round(now - self.t0, 2),
               "audio_s_processed": round(counts["decoded"] * frames.FRAME_SECONDS, 2),
               "frames_in": counts["pushed"], "frames_out": counts["decoded"],
               "rss_mb": round(rss_mb(), 2),
               "backlog_frames": counts["pushed"] - counts["decoded"],
               "transit_ms_mean": round(float(tr.mean()), 2) if tr is not None else "",
               "transit_ms_p95": round(float(np.percentile(tr, 95)), 2) if tr is not None else "",
               "transit_ms_max": round(float(tr.max()), 2) if tr is not None else "",
               "compute_ms_frame": round(sum(per_frame.values()), 3),
               "encode_ms": round(per_frame["encode"], 3),
               "controller_ms": round(per_frame["controller"], 3),
               "recovery_ms": round(per_frame["recovery"], 3),
               "decode_ms": round(per_frame["decode"], 3),
               "compute_call_ms_max": round(max(m for _, m in stages.values()), 2),
               "rtf_interval": round(dt / (dec_frames * frames.FRAME_SECONDS), 3) if dec_frames else "",
               "dep_pending_frames": dep["pending_frames"],
               "packets_sent": sent, "packets_dropped": dropped,
               "frames_lost": dep["frames_lost"], "threads": thread_count()}
        self._last = {"t": now, "frames": frames_now, "decoded": counts["decoded"]}
        self.rows.append(row)
        return row


# ----------------------------------------------------------------------------- analysis
def rss_growth(rows, warmup_fraction=0.10, window_fraction=0.05):
    """RSS after warm-up: baseline (median of the window right after warm-up), final (median
    of the last window), growth and peak growth in %, slope in MB per hour after warm-up."""
    t = np.array([r["elapsed_s"] for r in rows], float)
    m = np.array([r["rss_mb"] for r in rows], float)
    n = len(rows)
    if n < 5:
        return {"samples": n, "note": "too few samples"}
    t_end = t[-1]
    warm_end = max(warmup_fraction * t_end, t[min(2, n - 1)])
    after = np.nonzero(t >= warm_end)[0]
    if len(after) < 3:
        after = np.arange(n - 3, n)
    w = max(1, int(round(window_fraction * n)))
    base_idx = after[:w]
    final_idx = np.arange(n - w, n)
    base, final = float(np.median(m[base_idx])), float(np.median(m[final_idx]))
    peak = float(m[after].max())
    ta, ma = t[after], m[after]
    slope = float(np.polyfit(ta, ma, 1)[0] * 3600.0) if len(ta) >= 3 and ta[-1] > ta[0] else 0.0
    return {"samples": n, "warmup_s": round(float(warm_end), 1), "window_samples": w,
            "rss_start_mb": round(float(m[0]), 1), "rss_baseline_mb": round(base, 1),
            "rss_final_mb": round(final, 1), "rss_peak_after_warmup_mb": round(peak, 1),
            "growth_pct": round(100.0 * (final - base) / base, 3),
            "peak_growth_pct": round(100.0 * (peak - base) / base, 3),
            "slope_mb_per_hour": round(slope, 2)}


def merge_rows(rows, max_rows):
    """At most max_rows rows: groups of consecutive samples merged (see the module doc)."""
    if len(rows) <= max_rows:
        return rows
    k = math.ceil(len(rows) / max_rows)
    out = []
    for i in range(0, len(rows), k):
        g = rows[i:i + k]
        row = dict(g[-1])
        for c in MEAN_COLUMNS | MAX_COLUMNS:
            vals = [r[c] for r in g if r[c] != ""]
            if not vals:
                row[c] = ""
            elif c in MAX_COLUMNS:
                row[c] = max(vals)
            else:
                row[c] = round(float(np.mean(vals)), 3)
        out.append(row)
    return out


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        w.writerows(rows)


def plot(path, rows, title, growth):
    """soak.png: RSS, transit latency, compute per frame, backlog. Returns None or a reason."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"no plot: matplotlib not installed ({exc}); install the eval extra"

    def col(c):
        return np.array([float(r[c]) if r[c] != "" else np.nan for r in rows])

    t = col("elapsed_s") / 60.0
    fig, ax = plt.subplots(4, 1, figsize=(8, 9), sharex=True)
    ax[0].plot(t, col("rss_mb"), "k-")
    if "warmup_s" in growth:
        ax[0].axvline(growth["warmup_s"] / 60.0, color="0.6", ls="--", label="end of warm-up")
        ax[0].axhline(growth["rss_baseline_mb"] * 1.05, color="r", ls=":", label="baseline + 5 %")
        ax[0].legend(loc="lower right", fontsize=8)
    ax[0].set_ylabel("RSS (MB)")
    ax[1].plot(t, col("transit_ms_mean"), label="mean")
    ax[1].plot(t, col("transit_ms_p95"), label="p95")
    ax[1].plot(t, col("transit_ms_max"), label="max", alpha=0.6)
    ax[1].set_ylabel("TX packet -> RX decoded\n(ms, unthrottled)")
    ax[1].legend(loc="upper right", fontsize=8)
    for c in ("encode_ms", "controller_ms", "recovery_ms", "decode_ms"):
        ax[2].plot(t, col(c), label=c[:-3])
    ax[2].set_ylabel("compute (ms/frame)")
    ax[2].legend(loc="upper right", fontsize=8)
    ax[3].plot(t, col("backlog_frames"), "C0-")
    ax[3].set_ylabel("backlog (frames)\npacketized - decoded", color="C0")
    tw = ax[3].twinx()
    tw.plot(t, col("audio_s_processed") / 60.0, "C1-")
    tw.set_ylabel("audio decoded (min)", color="C1")
    ax[3].set_xlabel("wall time (min)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
    return None


# ----------------------------------------------------------------------------- main
def build_parser():
    from gnuradio.largesc.app import run_options
    from gnuradio.largesc.core.profiles import DEFAULT_PROFILE, PROFILE_NAMES
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILE_NAMES)
    p.add_argument("--lm-profile", default="", help="LM profile for --recovery moshi if not --profile")
    p.add_argument("--recovery", default="repeat", choices=run_options.RECOVERY_CHOICES)
    p.add_argument("--channel", default="erasure", choices=["erasure", "phy"])
    p.add_argument("--loss", type=float, default=0.1, help="erasure channel loss p (bernoulli)")
    p.add_argument("--snr", type=float, default=14.0, help="--channel phy: SNR per sample, dB")
    p.add_argument("--bandwidth", type=float, default=1100.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", action="store_true", help="several frames per codec call (run --batch)")
    p.add_argument("--minutes", type=float, default=2.0, help="minutes of audio to stream")
    p.add_argument("--in", dest="input", default="", help="clip to loop (default: the bundled clip)")
    p.add_argument("--out-rate", type=int, default=24000, help="output rate (24000: no resampler)")
    p.add_argument("--out", default="out/soak", help="output folder (soak.csv, soak.png, soak.json)")
    p.add_argument("--sample-seconds", type=float, default=5.0)
    p.add_argument("--warmup-fraction", type=float, default=0.10)
    p.add_argument("--max-growth-pct", type=float, default=5.0)
    p.add_argument("--stall-s", type=float, default=120.0,
                   help="fail if no frame is decoded for this long")
    p.add_argument("--max-rows", type=int, default=600, help="CSV rows at most (merged)")
    p.add_argument("--quiet", action="store_true")
    return p


def soak(args) -> dict:
    """Run one soak; write the files; return the summary (criteria under 'criteria')."""
    from gnuradio import blocks, gr

    from gnuradio.largesc.app import loopback, run_options, run_summary
    from gnuradio.largesc.core import audio_io
    from gnuradio.largesc.core.link import frames
    from gnuradio.largesc.gr_support.rates import rational_ratio

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    clip_path = args.input or str(run_options.BUNDLED_CLIP)
    o, d_max = run_options.checked_options({
        "input": clip_path, "output": str(out_dir / "unused.wav"), "profile": args.profile,
        "lm_profile": args.lm_profile, "recovery": args.recovery, "channel": args.channel,
        "loss": args.loss if args.channel == "erasure" else 0.0, "snr": args.snr,
        "bandwidth": args.bandwidth, "seed": args.seed, "batch": args.batch,
        "out_rate": args.out_rate, "quiet": True})
    clip, rate = audio_io.read_wav(clip_path)
    rational_ratio(rate)
    out_rate = args.out_rate or rate
    rational_ratio(out_rate)
    frame_in = rate * frames.FRAME_SAMPLES // frames.SAMPLE_RATE       # input samples per frame
    if frame_in * frames.SAMPLE_RATE != rate * frames.FRAME_SAMPLES:
        raise ValueError(f"the clip's rate {rate} Hz has no whole number of samples per frame")
    n_frames = max(1, int(round(args.minutes * 60.0 / frames.FRAME_SECONDS)))
    n_in = n_frames * frame_in
    n_total = n_in + loopback.PAD_FRAMES * frame_in     # as run_app: the resampler releases the end
    expected_frames = n_frames      # at least these come out; the padding adds up to PAD_FRAMES
    out_per_frame = frames.FRAME_SAMPLES * out_rate / frames.SAMPLE_RATE

    t_load = time.perf_counter()
    source = [blocks.vector_source_f(clip.astype(np.float32).tolist(), True),
              blocks.head(gr.sizeof_float, n_total)]
    sink = count_sink()
    tb = loopback.loopback_flowgraph(None, rate, o, d_max, out_rate, source=source, sink=sink)
    probe = Probe(tb)
    load_s = time.perf_counter() - t_load
    sampler = Sampler(tb, probe, args.sample_seconds, args.stall_s)
    label = (f"{args.profile} / {args.recovery} / " +
             (f"PHY SNR {args.snr:g} dB" if args.channel == "phy" else f"erasure p = {args.loss:g}") +
             f" / {args.minutes:g} min of audio")
    if not args.quiet:
        print(f"soak: {label}; {expected_frames} frames; samples every {args.sample_seconds:g} s "
              f"into {out_dir}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    tb.start()
    sampler.start()
    if not args.quiet:
        def report():
            while not sampler.stop_ev.wait(max(30.0, args.sample_seconds)):
                r = sampler.rows[-1] if sampler.rows else None
                if r:
                    print(f"[{r['elapsed_s']:8.1f} s] audio {r['audio_s_processed']:8.1f} s, "
                          f"frames {r['frames_out']}/{expected_frames}, RSS {r['rss_mb']:.1f} MB, "
                          f"transit p95 {r['transit_ms_p95']} ms", file=sys.stderr, flush=True)
        threading.Thread(target=report, daemon=True).start()
    tb.wait()
    run_s = time.perf_counter() - t0
    sampler.finish()
    rows = sampler.rows

    ts, rs = tb.tx.get_stats(), tb.rx.get_stats()
    frames_in = ts["controller"]["frames"]
    rec = rs["recovery"]
    counts = {"expected": expected_frames, "tx_encoder": ts["encoder"]["frames"],
              "tx_controller": frames_in, "rx_depacketizer": rs["depacketizer"]["frames_out"],
              "rx_recovery_in": rec.get("frames_in", 0), "rx_recovery_out": rec.get("frames_out", 0),
              "rx_decoder": rs["decoder"]["frames"], "probe_packetized": probe.pushed,
              "probe_reassembled": probe.reassembled, "probe_decoded": probe.decoded,
              "sink_samples": sink.samples, "sink_samples_expected": int(round(frames_in * out_per_frame))}
    frame_counts = [counts[k] for k in ("tx_controller", "rx_depacketizer", "rx_recovery_in",
                                        "rx_recovery_out", "rx_decoder", "probe_decoded")]
    growth = rss_growth(rows, args.warmup_fraction)
    transit = [float(r["transit_ms_p95"]) for r in rows if r["transit_ms_p95"] != ""]
    transit_max = [float(r["transit_ms_max"]) for r in rows if r["transit_ms_max"] != ""]
    backlog = [r["backlog_frames"] for r in rows]
    criteria = {
        "frames": {"pass": (expected_frames <= frames_in <= expected_frames + loopback.PAD_FRAMES
                            and all(c == frames_in for c in frame_counts)
                            and sink.samples == counts["sink_samples_expected"]),
                   "value": f"{counts['rx_decoder']} out / {frames_in} in (audio: {expected_frames}"
                            f" + up to {loopback.PAD_FRAMES} padding); {sink.samples} samples"},
        "order": {"pass": not any(probe.errors.values()) and probe.next_index == frames_in,
                  "value": dict(probe.errors, tokens_checked=probe.checked_tokens,
                                last_index=probe.next_index - 1)},
        "finite": {"pass": sink.nonfinite == 0, "value": sink.nonfinite},
        "memory": {"pass": "growth_pct" in growth and growth["growth_pct"] < args.max_growth_pct,
                   "value": growth.get("growth_pct"), "limit_pct": args.max_growth_pct},
        "finished": {"pass": not sampler.stalled, "value": "stalled" if sampler.stalled else "ended"},
    }
    summary = run_summary._summary(o, rate, n_in, tb.tx, tb.channel, tb.rx, load_s, run_s, d_max)
    for k in ("input", "output", "output_samples"):
        summary.pop(k, None)
    result = {
        "label": label, "passed": all(c["pass"] for c in criteria.values()), "criteria": criteria,
        "options": {k: v for k, v in vars(args).items()},
        "clip": clip_path, "clip_seconds": round(len(clip) / rate, 3),
        "audio_minutes": round(n_in / rate / 60.0, 3), "wall_minutes": round(run_s / 60.0, 2),
        "rtf": round(run_s / (n_in / rate), 3), "counts": counts, "rss": growth,
        "latency": {"transit_ms_p95_median": round(float(np.median(transit)), 1) if transit else None,
                    "transit_ms_max": round(max(transit_max), 1) if transit_max else None,
                    "backlog_frames_max": max(backlog) if backlog else None,
                    "note": "transit = TX packetizer -> RX decoder done, unthrottled: mostly the "
                            "pacer's queue (max_lead frames), not link latency"},
        "errors_sample": probe.error_samples, "output_peak": round(sink.peak, 4),
        "samples": len(rows), "run": summary,
    }
    merged = merge_rows(rows, args.max_rows)
    write_csv(out_dir / "soak.csv", merged)
    note = plot(out_dir / "soak.png", merged, label, growth)
    if note:
        result["plot"] = note
        print(f"soak: {note}", file=sys.stderr)
    (out_dir / "soak.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        res = soak(args)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"soak: error: {exc}", file=sys.stderr)
        return 2
    for name, c in res["criteria"].items():
        print(f"{name:9s} {'PASS' if c['pass'] else 'FAIL'}  {c['value']}")
    r = res["rss"]
    print(f"soak: {res['label']}: {'PASSED' if res['passed'] else 'FAILED'}; wall "
          f"{res['wall_minutes']} min (RTF {res['rtf']}); RSS {r.get('rss_baseline_mb')} -> "
          f"{r.get('rss_final_mb')} MB ({r.get('growth_pct')} %) after {r.get('warmup_s')} s warm-up; "
          f"transit p95 median {res['latency']['transit_ms_p95_median']} ms; files in {args.out}")
    return 0 if res["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
