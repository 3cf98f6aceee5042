#!/usr/bin/env python3
"""Mouth-to-ear delay of a live LargeSC link, measured: a paced loopback with clicks.

    .venv/bin/python scripts/click_latency.py [--seconds 12] [--sequential] [--recovery auto]

A real-time flowgraph (blocks.throttle on a 16 kHz source) runs LargeSC TX -> packet erasure
channel (p = 0) -> LargeSC RX (clocked: frames are declared lost by wall-clock deadline, as on a
live link), default profile. The source delivers 20 ms chunks, as an audio device does (a
throttle left to its default releases bursts of about half a second, which a clocked receiver,
with its 160 ms deadline, counts as late: 56 of 110 frames lost at p = 0 in a first try). The source is silence with a "click" every 1.5 s: a 240 ms stretch
of the bundled speech clip (a speech codec keeps speech, not impulses). Two probes record the
wall-clock time of every chunk of samples: one behind the throttle (when the TX gets them), one
at the RX output (when they come out). From them:

- the talker: sample n is spoken at T0 + n / fs, with the latest T0 that no chunk contradicts
  (a sample cannot reach the TX before it is spoken);
- the listener: a sink that plays continuously and never runs dry plays output sample i at
  S + i / fs, with the earliest S that every chunk allows (a sample cannot play before it exists),
  counted after a warm-up (the first second: model warm-up is a one-off, not buffering); also
  with S at the 95th percentile (a sink whose buffer lets 5 % of chunks arrive late);
- each click's onset is found in the output by correlating its log-RMS envelope (2.5 ms steps)
  with the input's around it (a vocoder keeps the envelope, not the waveform; evaluation/metrics.py).

Mouth-to-ear delay of a click = (S + i_out / fs) - (T0 + n_in / fs). It includes GNU Radio's
buffering and scheduling and each block's compute time, not an audio device's own buffer. The
script prints it per click with the latency table's received-frame figure
(`largesc_rx.algorithmic_latency_ms()` + `largesc_tx...`, gr_support/latency.py) for comparison,
and, to find what makes a sink wait: the output chunks that came latest (against the 95 % sink),
how late the input chunks reached the TX, and each block's compute time per frame (a stall
that hits input and output at once with every block's compute small is the process, e.g. a full
garbage collection: docs/latency.md).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

os.environ.setdefault("NO_TORCH_COMPILE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

FS = 16000
CLICK_S, EVERY_S, WARMUP_S = 0.24, 1.5, 1.0


def make_input(seconds: float) -> tuple[np.ndarray, list[int]]:
    from gnuradio.largesc.app.run_options import BUNDLED_CLIP
    from gnuradio.largesc.core import audio_io
    x, rate = audio_io.read_wav(BUNDLED_CLIP)
    x = audio_io.resample(x, rate, FS)
    env = np.convolve(np.abs(x), np.ones(160) / 160, "same")
    start = int(np.argmax(env > 0.3 * env.max()))                 # a loud stretch of speech
    click = x[start: start + int(CLICK_S * FS)].astype(np.float32)
    y = np.zeros(int(seconds * FS), np.float32)
    onsets = list(range(int(WARMUP_S * FS) + FS // 2, len(y) - int(EVERY_S * FS), int(EVERY_S * FS)))
    for n in onsets:
        y[n: n + len(click)] = click
    return y, onsets


def probe_block():
    from gnuradio import gr

    class probe(gr.sync_block):
        """Pass-through that records (wall time, first item index, items) per work call."""

        def __init__(self):
            gr.sync_block.__init__(self, "click_probe", [np.float32], [np.float32])
            self.log: list[tuple[float, int, int]] = []
            self.lock = threading.Lock()

        def work(self, input_items, output_items):
            n = len(input_items[0])
            output_items[0][:n] = input_items[0][:n]
            with self.lock:
                self.log.append((time.monotonic(), self.nitems_read(0), n))
            return n
    return probe()


def measure(seconds: float, recovery: str, overlap: bool, profile: str | None = None) -> dict:
    from gnuradio import blocks, gr

    from gnuradio.largesc.core.profiles import DEFAULT_PROFILE
    from gnuradio.largesc.evaluation.metrics import log_rms_envelope
    from gnuradio.largesc.gr_support.latency import latency_totals
    from gnuradio.largesc.largesc_rx import largesc_rx
    from gnuradio.largesc.largesc_tx import largesc_tx
    from gnuradio.largesc.packet_erasure_channel import packet_erasure_channel
    profile = profile or DEFAULT_PROFILE
    x, onsets = make_input(seconds)
    tb = gr.top_block()
    src = blocks.vector_source_f(np.concatenate([x, np.zeros(FS, np.float32)]).tolist(), False)
    thr = blocks.throttle(gr.sizeof_float, FS)
    for b in (src, thr):        # 20 ms chunks, as an audio device delivers them (a throttle's default
        b.set_max_noutput_items(FS // 50)   # bursts of ~0.5 s arrive past a clocked receiver's deadline)
    p_in, p_out = probe_block(), probe_block()
    tx = largesc_tx(samp_rate=FS, profile=profile, frame_by_frame=True)
    ch = packet_erasure_channel("bernoulli", 0.0)
    rx = largesc_rx(samp_rate=FS, profile=profile, recovery=recovery, clocked=True, frame_by_frame=True,
                    overlap=overlap)
    sink = blocks.vector_sink_f()
    tb.connect(src, thr, p_in, tx)
    tb.msg_connect(tx, "pdus", ch, "pdus")
    tb.msg_connect(ch, "pdus", rx, "pdus")
    tb.connect(rx, p_out, sink)
    tb.start()
    time.sleep(seconds + 1.5)
    tb.stop()
    tb.wait()
    y = np.array(sink.data(), np.float32)
    t0 = min(t - (i + n - 1) / FS for t, i, n in p_in.log)                    # the talker's clock
    warm = np.array([t - i / FS for t, i, n in p_out.log if i >= WARMUP_S * FS])
    s_all = max(t - i / FS for t, i, n in p_out.log)
    s = float(warm.max()) if len(warm) else s_all                            # the listener's clock
    s95 = float(np.percentile(warm, 95)) if len(warm) else s_all             # ... with 5 % of chunks late
    clicks = []
    hop, max_lag = FS // 400, int(0.6 * FS)                     # 2.5 ms envelope steps, lags up to 600 ms
    for n in onsets:
        ref = log_rms_envelope(x[n - FS // 4: n + int(CLICK_S * FS) + FS // 4], hop)
        seg = log_rms_envelope(y[n - FS // 4: n - FS // 4 + max_lag + int(CLICK_S * FS) + FS // 2], hop)
        if len(seg) <= len(ref):
            continue
        c = np.array([np.corrcoef(ref, seg[j: j + len(ref)])[0, 1] for j in range(len(seg) - len(ref) + 1)])
        k = int(np.nanargmax(c))
        if not c[k] > 0.6:                                          # not found: say so
            clicks.append({"onset_s": round(n / FS, 3), "found": False, "corr": round(float(c[k]), 2)})
            continue
        i_out = n + k * hop
        clicks.append({"onset_s": round(n / FS, 3), "found": True, "corr": round(float(c[k]), 2),
                       "delay_ms": round(1e3 * ((s + i_out / FS) - (t0 + n / FS)), 1),
                       "delay_p95_ms": round(1e3 * ((s95 + i_out / FS) - (t0 + n / FS)), 1),
                       "sample_shift_ms": round(1e3 * k * hop / FS, 1)})
    late = [(round(t - p_out.log[0][0], 3), round(1e3 * (t - i / FS - s95), 1), n)
            for t, i, n in p_out.log if i >= WARMUP_S * FS]
    late_in = np.array([t - (i + n - 1) / FS - t0 for t, i, n in p_in.log])    # s after being spoken
    rx_algo, tx_algo = rx.algorithmic_latency_ms(), tx.algorithmic_latency_ms()
    table_rx, table_lost = latency_totals(rx_algo)
    table = sum(tx_algo.values()) + table_rx
    found = [c["delay_ms"] for c in clicks if c.get("found")]
    return {"profile": profile, "recovery": rx.recovery_name, "overlap": rx.overlap_frames > 0,
            "table_received_ms": round(table, 1), "table_lost_ms": round(sum(tx_algo.values()) + table_lost, 1),
            "measured_mean_ms": round(float(np.mean(found)), 1) if found else None,
            "measured_max_ms": round(float(np.max(found)), 1) if found else None,
            "measured_p95_sink_ms": round(float(np.mean([c["delay_p95_ms"] for c in clicks if c.get("found")])), 1)
            if found else None,
            "frames_lost": rx.get_stats()["depacketizer"].get("frames_lost"),
            "startup_extra_ms": round(1e3 * (s_all - s), 1), "clicks": clicks,
            # output chunks (after the warm-up) that came latest, against the 95 % sink's clock:
            # (seconds since the first output chunk, ms later than that sink allows, samples)
            "latest_chunks": sorted(late, key=lambda c: -c[1])[:8],
            "rx_compute": rx.get_stats()["compute"], "tx_compute": tx.get_stats()["compute"],
            "input_late_ms_p50_p99_max": [round(1e3 * float(np.percentile(late_in, q)), 1) for q in (50, 99, 100)],
            "input_latest_chunk_s": round(p_in.log[int(np.argmax(late_in))][0] - p_out.log[0][0], 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--recovery", default="auto")
    ap.add_argument("--sequential", action="store_true", help="RX without the overlap (docs/latency.md)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    r = measure(a.seconds, a.recovery, not a.sequential)
    if a.json:
        print(json.dumps(r, indent=1))
    else:
        print(f"profile {r['profile']}, recovery {r['recovery']}, overlap {r['overlap']}: table {r['table_received_ms']} ms "
              f"(received frame), measured click-to-click {r['measured_mean_ms']} ms mean, {r['measured_max_ms']} ms max "
              f"over {sum(c.get('found', False) for c in r['clicks'])} clicks with a sink that never runs dry; "
              f"{r['measured_p95_sink_ms']} ms with one that lets 5 % of chunks come late; frames lost "
              f"{r['frames_lost']}; start-up adds {r['startup_extra_ms']} ms once, not counted")
        for c in r["clicks"]:
            print("  ", c)
        print("latest output chunks (s since the first, ms later than the 95 % sink allows, samples):",
              r["latest_chunks"])
        print("input chunks late against the talker (ms, p50 / p99 / max):", r["input_late_ms_p50_p99_max"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
