"""`gr-largesc run`: the whole LargeSC loopback on a wav file, headless, as a GNU Radio flowgraph.

    wav -> largesc_tx -> packet_erasure_channel -> largesc_rx -> wav     (--channel erasure)
                      or packet_phy (GMSK + CRC + AWGN/multipath at --snr) (--channel phy)
               ^------------- feedback (loss rate) ------------'

With --channel phy the packets cross a simulated radio link built from GNU Radio's own blocks
(python/largesc/packet_phy.py): the PHY, not a coin, loses them, and the summary gives the
on-air rate with the PHY's framing overhead (preamble, access code, length header, CRC-32) beside
the payload rate.

The flowgraph is built in Python (gr-dvbs2rx `apps/` style) and runs unthrottled: TX is paced
by RX (largesc_tx.pace_with) so memory stays flat, and the sender's end-of-stream PDU ends the
run with one output frame per input frame. The output wav has the input's duration, at the
input's rate or at --out-rate.
Progress goes to stderr; the summary (frames, packets, payload and header bits and bps, lost
frames, tokens by source, latency) to stdout as a table, or as JSON with --json.

From Python: `run(options) -> dict`, where options is an argparse.Namespace from
`build_parser()` or a dict with the same keys (missing keys take the parser's defaults).

Reproducibility: --seed fixes the channel's losses, the packet epoch and the recovery's
sampling, and the codec runs one frame per call, so the same seed gives the same output bytes
(--batch trades that for speed). That holds with --feedback oracle
(the default: the controller uses the configured loss rate). With --feedback loop the
controller follows the receiver's loss reports, whose arrival time depends on thread
scheduling, so two runs can differ in a few frames' allocation. --channel phy keeps it too: the
PHY's noise is seeded and its bursts follow one another in the sample stream whatever the
thread timing, so the same seed loses the same packets.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("NO_TORCH_COMPILE", "1")

PROFILE_CHOICES = ["mini", "kyutai", "kyutai-arch", "tiny"]
RECOVERY_CHOICES = ["moshi", "repeat", "zero", "prefix"]
LOSS_MODELS = {"bernoulli": "bernoulli", "gilbert": "gilbert_elliott", "trace": "trace"}
BUNDLED_CLIP = Path(__file__).resolve().parent / "data" / "speech_librivox_16k.wav"
PAD_FRAMES = 2          # silence appended so the resamplers' filters release the input's end


def build_parser(prog: str = "gr-largesc run") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="LargeSC loopback on a wav file: "
                                "TX -> packet erasure channel -> RX, as a GNU Radio flowgraph.")
    p.add_argument("--in", dest="input", default=str(BUNDLED_CLIP),
                   help="input wav (any common rate; default: the bundled speech clip)")
    p.add_argument("--out", dest="output", default="out/run/decoded.wav",
                   help="output wav (input duration; input rate unless --out-rate)")
    p.add_argument("--out-rate", type=int, default=0,
                   help="output sample rate in Hz (0: the input's; 24000: Mimi's, no resampling)")
    p.add_argument("--profile", choices=PROFILE_CHOICES, default="tiny", help="model profile")
    p.add_argument("--lm-profile", default="", help="profile of the recovery LM if not --profile")
    p.add_argument("--bandwidth", type=float, default=1100.0,
                   help="payload budget B in bps (550..2062.5)")
    p.add_argument("--loss", type=float, default=0.0, help="mean packet loss probability p")
    p.add_argument("--loss-model", choices=list(LOSS_MODELS), default="bernoulli")
    p.add_argument("--burst", type=float, default=2.0, help="mean burst length (gilbert), packets")
    p.add_argument("--trace", default="", help="loss trace file for --loss-model trace "
                   "('0'/'1' per packet)")
    p.add_argument("--channel", choices=["erasure", "phy"], default="erasure",
                   help="erasure: packet erasure channel (--loss, --loss-model); phy: GMSK packet "
                        "PHY + channel model (--snr, --freq-offset, --taps; --loss is then only the "
                        "controller's first loss estimate, --feedback loop follows RX)")
    p.add_argument("--snr", type=float, default=20.0,
                   help="--channel phy: SNR per sample in dB (about 0%% loss at 18, 30%% at 13)")
    p.add_argument("--freq-offset", type=float, default=0.0,
                   help="--channel phy: frequency offset in cycles per sample")
    p.add_argument("--taps", default="1.0",
                   help="--channel phy: multipath taps, comma-separated (e.g. 1,0.3,0.1)")
    p.add_argument("--recovery", choices=RECOVERY_CHOICES, default="moshi")
    p.add_argument("--d", type=int, default=1, help="copy distance d (frames)")
    p.add_argument("--d-max", type=int, default=0, help="frames RX waits for copies (0: d + 1)")
    p.add_argument("--dtx", action="store_true", help="discontinuous transmission")
    p.add_argument("--feedback", choices=["oracle", "loop"], default="oracle",
                   help="controller's loss rate: the configured p (reproducible) or RX reports")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument("--threads", type=int, default=1, help="torch threads per model block")
    p.add_argument("--max-lead", type=int, default=25,
                   help="frames TX may run ahead of RX (flow control of the file run)")
    p.add_argument("--batch", action="store_true",
                   help="let GNU Radio hand the codec several frames per call: faster on small "
                        "models, but not bit-exact from run to run (last-bit rounding)")
    p.add_argument("--stats-interval", type=float, default=0.0, metavar="S",
                   help="also print every block's counters as one JSON line on stderr every S s")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def _options(options) -> argparse.Namespace:
    defaults = vars(build_parser().parse_args([]))
    given = vars(options) if isinstance(options, argparse.Namespace) else dict(options or {})
    unknown = set(given) - set(defaults)
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(sorted(unknown))}")
    return argparse.Namespace(**{**defaults, **given})


def _taps(text):
    """'1,0.3,0.1j' -> [1, 0.3, 0.1j] (complex multipath taps)."""
    try:
        taps = [complex(t.strip().replace(" ", "")) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--taps must be comma-separated numbers, got {text!r}") from None
    if not taps or not any(taps) or not all(math.isfinite(abs(t)) for t in taps):
        raise ValueError(f"--taps needs finite numbers and a nonzero tap, got {text!r}")
    return taps


def _channel_stats(o, ch) -> dict:
    """{'sent', 'dropped', 'loss'} of data packets, whichever channel; plus the PHY's counters."""
    if o.channel != "phy":
        c = ch.get_stats()
        return {"sent": c["sent"], "dropped": c["dropped"], "loss": c["loss"]}
    c = ch.get_stats()
    sent, got = c["tx"]["packets"], c["rx"]["packets"]
    return {"sent": sent, "dropped": max(0, sent - got), "loss": max(0, sent - got) / sent if sent else 0.0,
            "phy": c}


def loopback_flowgraph(x, rate, o, d_max, out_rate=None, source=None, sink=None):
    """The top block: vector source -> largesc_tx -> erasure channel -> largesc_rx -> vector sink.

    `source` (a float stream block, or a sequence of blocks connected in a chain) replaces the
    vector source of `x`, and `sink` (a float stream sink) the vector sink: scripts/soak.py uses
    a looping source and a counting sink so that an hour of audio needs no hour-long buffers.
    """
    from gnuradio import blocks, gr

    from .largesc_rx import largesc_rx
    from .largesc_tx import largesc_tx
    from .packet_erasure_channel import packet_erasure_channel

    class _loopback(gr.top_block):
        def __init__(self):
            gr.top_block.__init__(self, "largesc_run")
            chain = (source if isinstance(source, (list, tuple)) else [source]) if source is not None \
                else [blocks.vector_source_f(x.tolist(), False)]
            self.source = chain[0]
            self.tx = largesc_tx(samp_rate=rate, profile=o.profile, bandwidth_bps=o.bandwidth, d=o.d,
                                 loss_rate=o.loss, use_feedback=o.feedback == "loop", dtx=o.dtx,
                                 device=o.device, num_threads=o.threads, seed=o.seed,
                                 frame_by_frame=not o.batch)
            if o.channel == "phy":
                from .packet_phy import packet_phy
                self.channel = packet_phy(snr_db=o.snr, freq_offset=o.freq_offset,
                                          taps=_taps(o.taps), seed=o.seed)
            else:
                self.channel = packet_erasure_channel(LOSS_MODELS[o.loss_model], o.loss,
                                                      mean_burst=o.burst, trace_file=o.trace,
                                                      seed=o.seed)
            self.rx = largesc_rx(samp_rate=out_rate or rate, profile=o.profile, d=o.d, d_max=d_max,
                                 recovery=o.recovery, device=o.device, num_threads=o.threads,
                                 seed=o.seed, lm_profile=o.lm_profile, frame_by_frame=not o.batch)
            self.sink = blocks.vector_sink_f() if sink is None else sink
            self.connect(*chain, self.tx)
            self.msg_connect(self.tx, "pdus", self.channel, "pdus")
            self.msg_connect(self.channel, "pdus", self.rx, "pdus")
            self.msg_connect(self.rx, "feedback", self.tx, "feedback")
            self.connect(self.rx, self.sink)
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


def checked_options(options):
    """(Namespace, d_max): the options with defaults filled in and checked (ValueError if bad)."""
    o = _options(options)
    if not 0.0 <= o.loss <= 1.0:
        raise ValueError(f"--loss must be in [0, 1], got {o.loss}")
    if o.d < 1 or o.d_max < 0 or (o.d_max and o.d_max < o.d):
        raise ValueError(f"need d >= 1 and d_max >= d (or 0), got d = {o.d}, d_max = {o.d_max}")
    if o.channel == "phy":
        _taps(o.taps)
        if not abs(o.freq_offset) < 0.5:
            raise ValueError(f"--freq-offset must be in (-0.5, 0.5) cycles per sample, got {o.freq_offset}")
    elif o.loss_model == "trace" and not o.trace:
        raise ValueError("--loss-model trace needs --trace FILE")
    return o, (o.d_max if o.d_max > 0 else o.d + 1)


def run(options) -> dict:
    """Run the loopback; write the output wav; return the summary dict (see module doc)."""
    import numpy as np

    from ._blockutil import release_hier_blocks
    from .core import audio_io, frames
    from .largesc_tx import rational_ratio

    o, d_max = checked_options(options)
    x, rate = audio_io.read_wav(o.input)
    rational_ratio(rate)                                 # refuses odd rates early
    n_in = len(x)
    frame_in = rate * frames.FRAME_SAMPLES / frames.SAMPLE_RATE
    pad = int(round(PAD_FRAMES * frame_in)) + (-n_in) % max(1, int(round(frame_in)))
    x = np.concatenate([x, np.zeros(pad, np.float32)])

    t_load = time.perf_counter()
    out_rate = o.out_rate or rate
    rational_ratio(out_rate)
    n_out = int(round(n_in * out_rate / rate))
    tb = loopback_flowgraph(x, rate, o, d_max, out_rate)
    tx, ch, rx, snk = tb.tx, tb.channel, tb.rx, tb.sink
    load_s = time.perf_counter() - t_load

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

    y = np.array(snk.data(), dtype=np.float32)[:n_out]
    if len(y) < n_out:                                   # only after Ctrl-C: keep the length promise
        y = np.concatenate([y, np.zeros(n_out - len(y), np.float32)])
    audio_io.write_wav(o.output, y, out_rate)
    summary = _summary(o, rate, n_in, tx, ch, rx, load_s, run_s, d_max)
    release_hier_blocks(tx, ch, rx)             # GNU Radio issue #7706: else never freed
    summary.update(output_rate=out_rate, output_samples=n_out)
    summary["interrupted"] = bool(interrupted)
    return summary


def _summary(o, rate, n_in, tx, ch, rx, load_s, run_s, d_max) -> dict:
    from .core import frames
    ts, rs, cs = tx.get_stats(), rx.get_stats(), _channel_stats(o, ch)
    ctl, dep, rec = ts["controller"], rs["depacketizer"], rs["recovery"]
    n_frames = ctl["frames"]
    seconds = n_in / rate
    tokens = {k[len("tokens_"):]: v for k, v in rec.items() if k.startswith("tokens_")}
    algo = {**tx.algorithmic_latency_ms(),
            ("channel (simulated PHY: air time not modelled)" if o.channel == "phy"
             else "channel (simulated)"): 0.0,
            **rx.algorithmic_latency_ms()}
    compute = {"encode": ts["compute"]["encode"], "controller + packetizer": ts["compute"]["controller"],
               "recovery": rs["compute"]["recovery"], "decode": rs["compute"]["decode"]}
    # a live link has neither the file-mode hold nor (for received frames) the copy wait
    algo_received = sum(v for k, v in algo.items() if not k.startswith(("redundancy", "hold")))
    compute_frame = sum(c["ms_per_frame"] for c in compute.values())
    on_air = round(ctl["payload_bps"] + ctl["overhead_bps"], 2)
    phy = {}
    if o.channel == "phy":
        ov = ch.overhead()
        bursts = cs["phy"]["tx"]
        per_s = 1.0 / (frames.FRAME_SECONDS * max(1, n_frames))     # as the controller's bps
        phy_bps = on_air + ctl["packets"] * ov["bits"] * per_s
        rx_c = cs["phy"]["rx"]
        eos = ("in band" if rx_c["eos_in_band"] else
               "simulation fallback (every copy lost)" if rx_c["eos_sim"] else "none")
        phy = {"snr_db": o.snr, "freq_offset": o.freq_offset,
               "taps": [t.strip() for t in str(o.taps).split(",") if t.strip()],
               "phy_overhead_bits_per_packet": ov["bits"],
               "phy_guard_symbols_per_packet": ov["guard_symbols"],
               "on_air_bps_phy": round(phy_bps, 2),
               "channel_symbol_rate": round(phy_bps + ctl["packets"] * ov["guard_symbols"] * per_s, 2),
               "phy_bursts": bursts["bursts"],
               "phy_control_bursts": bursts["sync_bursts"] + bursts["eos_bursts"],
               "phy_crc_fail": rx_c["crc_fail"], "eos": eos}
    return {
        "input": str(o.input), "output": str(o.output), "rate": rate, "seconds": round(seconds, 3),
        "output_samples": n_in, "profile": o.profile, "recovery": o.recovery,
        "bandwidth_bps": o.bandwidth, "loss": o.loss, "loss_model": o.loss_model,
        "burst": o.burst, "d": o.d, "d_max": d_max, "feedback": o.feedback, "seed": o.seed,
        "frames": n_frames, "packets": ctl["packets"],
        "payload_bits": ctl["payload_bits"], "header_bits": ctl["overhead_bits"],
        "payload_bps": round(ctl["payload_bps"], 2), "header_bps": round(ctl["overhead_bps"], 2),
        "on_air_bps": on_air, "channel": o.channel, **phy,
        "packets_dropped": cs["dropped"], "channel_loss": round(cs["loss"], 4),
        "frames_out": dep["frames_out"], "frames_lost": dep["frames_lost"],
        "lost_fraction": round(dep["frames_lost"] / dep["frames_out"], 4) if dep["frames_out"] else 0.0,
        "frames_with_copies": dep["copies_used"], "bad_packets": dep["bad"], "late_packets": dep["late"],
        "tokens": tokens,
        "frames_generated": rec.get("frames_generated", 0), "frames_fallback": rec.get("frames_fallback", 0),
        "loss_estimate_rx": round(dep["loss_rate"], 4),
        "latency": {"algorithmic_ms": {k: round(v, 2) for k, v in algo.items()},
                    "algorithmic_ms_received_frame": round(algo_received, 2),
                    "algorithmic_ms_lost_frame": round(algo_received + d_max * frames.FRAME_SECONDS * 1e3, 2),
                    "compute_ms_per_frame": compute,
                    "compute_ms_per_frame_total": round(compute_frame, 3),
                    "gnuradio_buffering": "not measured in a file run (unthrottled: queueing, "
                                          "not latency)"},
        "model_load_s": round(load_s, 2), "run_s": round(run_s, 2),
        "rtf": round(run_s / seconds, 3) if seconds else 0.0,
        "pacer_waits": ts["pacer"]["waits"],
    }


def format_summary(s: dict) -> str:
    """Human-readable summary: stats table + latency table (Markdown)."""
    if s.get("channel") == "phy":
        rate_rows = [
            ("packet rate (payload + LargeSC header)", f"{s['on_air_bps']} bps"),
            ("on-air rate with PHY overhead",
             f"{s['on_air_bps_phy']} bps (+ {s['phy_overhead_bits_per_packet']} bits per packet: "
             f"preamble, access code, length, type, CRC-32)"),
            ("channel symbol rate incl. guard",
             f"{s['channel_symbol_rate']} symbols/s (GMSK, 1 bit per symbol; "
             f"{s['phy_guard_symbols_per_packet']:g} guard symbols per packet)"),
            ("PHY bursts (control: sync, eos, flush)",
             f"{s['phy_bursts']} ({s['phy_control_bursts']}); CRC failures {s['phy_crc_fail']}; "
             f"eos {s['eos']}")]
    else:
        rate_rows = [("on-air rate (erasure channel: no PHY)", f"{s['on_air_bps']} bps")]
    rows = [("input", f"{s['input']} ({s['seconds']} s, {s['rate']} Hz)"),
            ("output", f"{s['output']} ({s['output_samples']} samples at {s['output_rate']} Hz "
                       f"= input duration)"),
            ("profile / recovery", f"{s['profile']} / {s['recovery']}"),
            ("channel", (f"GMSK packet PHY (sps 2, CRC-32), SNR {s['snr_db']} dB, frequency offset "
                         f"{s['freq_offset']}, taps {', '.join(s['taps'])}, seed {s['seed']}")
             if s.get("channel") == "phy" else
             f"{s['loss_model']}, p = {s['loss']}" +
             (f", burst {s['burst']}" if s["loss_model"] == "gilbert" else "") + f", seed {s['seed']}"),
            ("budget B", f"{s['bandwidth_bps']:g} bps, d = {s['d']}, d_max = {s['d_max']}, "
                         f"feedback {s['feedback']}"),
            ("frames", s["frames"]), ("packets", s["packets"]),
            ("payload bits / bps", f"{s['payload_bits']} / {s['payload_bps']}"),
            ("header bits / bps", f"{s['header_bits']} / {s['header_bps']} (header + CRC + pad)"),
            *rate_rows,
            ("packets dropped" + (" (lost by the PHY)" if s.get("channel") == "phy" else ""),
             f"{s['packets_dropped']} ({s['channel_loss']:.1%})"),
            ("frames lost (no own packet, no copy)", f"{s['frames_lost']} of {s['frames_out']} "
                                                     f"({s['lost_fraction']:.1%})"),
            ("frames helped by copies", s["frames_with_copies"]),
            ("tokens by source", ", ".join(f"{k} {v}" for k, v in s["tokens"].items())),
            ("frames with generated / fallback tokens", f"{s['frames_generated']} / {s['frames_fallback']}"),
            ("RX loss estimate", s["loss_estimate_rx"]),
            ("model load / run", f"{s['model_load_s']} s / {s['run_s']} s (RTF {s['rtf']})")]
    if s.get("interrupted"):
        rows.insert(0, ("interrupted", "yes (Ctrl-C): the output holds what was decoded so far"))
    out = ["| quantity | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    lat = s["latency"]
    out += ["", "| latency stage | algorithmic (ms) | compute (ms/frame, mean) |", "|---|---|---|"]
    comp = lat["compute_ms_per_frame"]
    stage_compute = {"frame buffering": comp["encode"]["ms_per_frame"],
                     "packetization": comp["controller + packetizer"]["ms_per_frame"],
                     "recovery": comp["recovery"]["ms_per_frame"],
                     "decoder": comp["decode"]["ms_per_frame"]}
    for k, v in lat["algorithmic_ms"].items():
        c = stage_compute.get(k, "")
        label = {"frame buffering": "frame buffering + encode",
                 "packetization": "packetization + controller"}.get(k, k)
        out.append(f"| {label} | {v} | {c} |")
    out += [f"| **total, received frame (best case, live link)** | {lat['algorithmic_ms_received_frame']} | "
            f"{lat['compute_ms_per_frame_total']} |",
            f"| **total, lost frame (waits d_max for a copy, live link)** | {lat['algorithmic_ms_lost_frame']} | "
            f"{lat['compute_ms_per_frame_total']} |",
            "", "Algorithmic: delay by design, from frame and sample counts (80 ms frames, filter group "
            "delays, waits in frames). Compute: time in the stage's model or core call per frame, "
            "measured in this run. Frames that follow a lost frame also wait for it (in-order "
            "release). The file-mode hold is not on a live link and not in the totals.",
            f"GNU Radio buffering: {lat['gnuradio_buffering']}."]
    return "\n".join(out)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        s = run(args)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"gr-largesc run: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(s, indent=1) if args.json else format_summary(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
