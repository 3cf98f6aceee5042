"""The LargeSC loopback as a GNU Radio flowgraph (TX -> channel -> RX) and `run()`, which runs
it on a wav file and returns the summary (app/run_summary.py). `gr-largesc run` (app/run_app.py)
is its command line."""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from .run_options import LOSS_MODELS, _taps, checked_options
from .run_summary import _summary

os.environ.setdefault("NO_TORCH_COMPILE", "1")

PAD_FRAMES = 2          # silence the soak appends so the resamplers' filters release the input's end
TAIL_MARGIN_FRAMES = 1  # silence a file run appends beyond its output shift (resampler history)


def loopback_flowgraph(x, rate, o, d_max, out_rate=None, source=None, sink=None):
    """The top block: vector source -> largesc_tx -> erasure channel -> largesc_rx -> vector sink.

    `source` (a float stream block, or a sequence of blocks connected in a chain) replaces the
    vector source of `x`, and `sink` (a float stream sink) the vector sink: scripts/soak.py uses
    a looping source and a counting sink so that an hour of audio needs no hour-long buffers.
    """
    from gnuradio import blocks, gr

    from ..largesc_rx import largesc_rx
    from ..largesc_tx import largesc_tx
    from ..packet_erasure_channel import packet_erasure_channel

    class _loopback(gr.top_block):
        def __init__(self):
            gr.top_block.__init__(self, "largesc_run")
            chain = (source if isinstance(source, (list, tuple)) else [source]) if source is not None \
                else [blocks.vector_source_f(x.tolist(), False)]
            self.source = chain[0]
            self.tx = largesc_tx(samp_rate=rate, profile=o.profile, bandwidth_bps=o.bandwidth, d=o.d,
                                 loss_rate=o.loss, use_feedback=o.feedback == "loop", dtx=o.dtx,
                                 device=o.device, num_threads=o.threads, seed=o.seed,
                                 frame_by_frame=not o.batch, packet_format=o.packet_format,
                                 callsign=o.callsign, text_share=o.text_share)
            for text in o.text:                 # queued before the first frame
                self.tx.controller.text.submit(text)
            if o.channel == "phy":
                from ..packet_phy import packet_phy
                self.channel = packet_phy(snr_db=o.snr, freq_offset=o.freq_offset,
                                          taps=_taps(o.taps), seed=o.seed)
            else:
                self.channel = packet_erasure_channel(LOSS_MODELS[o.loss_model], o.loss,
                                                      mean_burst=o.burst, trace_file=o.trace,
                                                      seed=o.seed)
            self.rx = largesc_rx(samp_rate=out_rate or rate, profile=o.profile, d=o.d, d_max=d_max,
                                 recovery=o.recovery, device=o.device, num_threads=o.threads,
                                 seed=o.seed, lm_profile=o.lm_profile, frame_by_frame=not o.batch,
                                 packet_format=o.packet_format, codec_window=o.codec_window,
                                 overlap=not getattr(o, "sequential", False))
            self.sink = blocks.vector_sink_f() if sink is None else sink
            # file runs keep the receiver's per-frame codebook states (app/frame_view.py)
            self.states = blocks.vector_sink_b(8) if sink is None else None
            self.connect(*chain, self.tx)
            self.msg_connect(self.tx, "pdus", self.channel, "pdus")
            self.msg_connect(self.channel, "pdus", self.rx, "pdus")
            self.msg_connect(self.rx, "feedback", self.tx, "feedback")
            self.connect(self.rx, self.sink)
            if self.states is not None:
                self.connect((self.rx, 1), self.states)
            self.tx.pace_with(self.rx, max_lead_frames=max(o.max_lead, d_max + 2))

        def get_stats(self) -> dict:
            """{'tx', 'channel', 'rx'}: every block's counters (gr-dvbs2rx style), any thread."""
            return {"tx": self.tx.get_stats(), "channel": self.channel.get_stats(),
                    "rx": self.rx.get_stats()}

    return _loopback()


def _progress(tb, total, stop, stream, stats_interval=0.0, quiet=False):
    """Progress lines every second; with stats_interval > 0 also tb.get_stats() as JSON lines."""
    t0 = last_stats = time.monotonic()
    while not stop.wait(1.0 if not quiet else max(0.1, stats_interval)):
        now = time.monotonic()
        if not quiet:
            sent = tb.tx.controller.get_stats()["frames"]
            done = tb.rx.decoder.get_stats()["frames"]
            stream.write(f"[{now - t0:6.1f} s] frames sent {sent}/{total}, decoded {done}/{total}\n")
        if stats_interval > 0 and now - last_stats >= stats_interval - 0.05:
            last_stats = now
            stream.write(json.dumps({"t": round(now - t0, 2), "stats": tb.get_stats()}) + "\n")
        stream.flush()


def run(options) -> dict:
    """Run the loopback; write the output wav; return the summary dict (see module doc)."""
    import numpy as np

    from ..core import audio_io
    from ..core.link import frames
    from ..gr_support.hier import release_hier_blocks
    from ..gr_support.latency import hier_output_shift_s
    from ..gr_support.rates import rational_ratio

    o, d_max = checked_options(options)
    x, rate = audio_io.read_wav(o.input)
    rational_ratio(rate)                                 # refuses odd rates early
    n_in = len(x)

    t_load = time.perf_counter()
    out_rate = o.out_rate or rate
    rational_ratio(out_rate)
    n_out = int(round(n_in * out_rate / rate))
    tb = loopback_flowgraph(x[:0], rate, o, d_max, out_rate)        # its data: below, padded
    tx, ch, rx, snk = tb.tx, tb.channel, tb.rx, tb.sink
    load_s = time.perf_counter() - t_load
    # The output samples lag the input's by the codec's look-ahead and sub-frame delay, less the
    # resamplers' group delays (they advance the stream), all read from the blocks
    # (gr_support/latency.py): feed enough silence after the input for its end to come out (the
    # resamplers also keep back their group delay), then cut the output from that shift on.
    shift_s = hier_output_shift_s(tx, rx)
    shift_out = int(round(shift_s * out_rate))
    x = np.concatenate([x, np.zeros(tail_pad_samples(n_in, rate, shift_s), np.float32)])
    tb.source.set_data(x.tolist(), [])

    total = int(len(x) * frames.SAMPLE_RATE // rate) // frames.FRAME_SAMPLES
    stop = threading.Event()
    prog = None
    if not o.quiet:
        chan = (f"GMSK PHY at SNR {o.snr:g} dB" if o.channel == "phy"
                else f"p = {o.loss:g} ({o.loss_model})")
        sys.stderr.write(f"gr-largesc run: {o.input} ({n_in / rate:.2f} s at {rate} Hz), profile "
                         f"{o.profile}, B = {o.bandwidth:g} bps, {chan}, "
                         f"recovery {o.recovery}, seed {o.seed}\n")
    if not o.quiet or o.stats_interval > 0:
        prog = threading.Thread(target=_progress, args=(tb, total, stop, sys.stderr,
                                                        o.stats_interval, o.quiet), daemon=True)
        prog.start()
    interrupted = []
    old_handler = None
    if threading.current_thread() is threading.main_thread():
        def on_sigint(signum, frame):               # Ctrl-C: stop the flowgraph, keep what came out
            interrupted.append(True)
            tb.stop()
        old_handler = signal.signal(signal.SIGINT, on_sigint)
    t0 = time.perf_counter()
    try:
        tb.start()
        tb.wait()
    finally:
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
        stop.set()
        if prog is not None:
            prog.join()
    run_s = time.perf_counter() - t0

    y = np.array(snk.data(), dtype=np.float32)
    # a negative shift (no codec delay, resamplers ahead): the first samples never came out
    y = y[shift_out: shift_out + n_out] if shift_out >= 0 else \
        np.concatenate([np.zeros(-shift_out, np.float32), y[: n_out + shift_out]])
    if len(y) < n_out:                                   # only after Ctrl-C: keep the length promise
        y = np.concatenate([y, np.zeros(n_out - len(y), np.float32)])
    audio_io.write_wav(o.output, y, out_rate)
    png = _frame_view(o, tb, x[:n_in], rate, y, out_rate)
    summary = _summary(o, rate, n_in, tx, ch, rx, load_s, run_s, d_max)
    release_hier_blocks(tx, ch, rx)             # GNU Radio issue #7706: else never freed
    summary.update(output_rate=out_rate, output_samples=n_out, output_shift_ms=round(shift_s * 1e3, 3),
                   tail_pad_ms=round((len(x) - n_in) / rate * 1e3, 3), **png)
    summary["interrupted"] = bool(interrupted)
    return summary


def tail_pad_samples(n_in: int, rate: int, shift_s: float) -> int:
    """Silence (input samples) to append to an input of `n_in` samples at `rate` so that a run
    whose output lags by `shift_s` brings out all of it: whole 80 ms frames covering the input
    plus the shift, plus TAIL_MARGIN_FRAMES for the resamplers' history."""
    import math

    from ..core.link import frames
    n_frames = math.ceil((n_in / rate + max(0.0, shift_s)) / frames.FRAME_SECONDS - 1e-9) + TAIL_MARGIN_FRAMES
    total = int(math.ceil(n_frames * frames.FRAME_SECONDS * rate - 1e-9))
    return max(0, total - n_in)


def _frame_view(o, tb, x, rate, y, out_rate) -> dict:
    """The run's PNG (app/frame_view.py) at --png ('' : beside the output wav, 'none': no picture)."""
    if o.png == "none" or tb.states is None:
        return {}
    import numpy as np

    from .frame_view import write_frame_view
    path = Path(o.png) if o.png else Path(o.output).with_suffix(".png")
    states = np.array(tb.states.data(), np.uint8).reshape(-1, 8)
    try:
        drawn = write_frame_view(path, x, rate, y, out_rate, states,
                                 f"{o.profile}, B = {o.bandwidth:g} bps, recovery {o.recovery}")
    except ImportError as exc:                      # matplotlib missing: the run still counts
        return {"png": None, "png_error": f"no picture: {exc}"}
    return {"png": str(path), "png_frames_lost": drawn["frames_lost"]}
