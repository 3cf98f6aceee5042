"""The summary of a loopback run: counters, rates and the latency table, as a dict and as text."""
from __future__ import annotations

from ..core.link.packet_formats import DEFAULT_FORMAT
from ..gr_support.latency import latency_totals


def _channel_stats(o, ch) -> dict:
    """{'sent', 'dropped', 'loss'} of data packets, whichever channel; plus the PHY's counters."""
    if o.channel != "phy":
        c = ch.get_stats()
        return {"sent": c["sent"], "dropped": c["dropped"], "loss": c["loss"]}
    c = ch.get_stats()
    sent, got = c["tx"]["packets"], c["rx"]["packets"]
    return {"sent": sent, "dropped": max(0, sent - got), "loss": max(0, sent - got) / sent if sent else 0.0,
            "phy": c}


def _summary(o, rate, n_in, tx, ch, rx, load_s, run_s, d_max) -> dict:
    from ..core.link import frames
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
    algo_received, algo_lost = latency_totals(algo, d_max)
    compute_frame = sum(c["ms_per_frame"] for c in compute.values())
    # on air = payload + header as printed (each rounded to 0.01 bps), so the table adds up
    on_air = round(round(ctl["payload_bps"], 2) + round(ctl["overhead_bps"], 2), 2)
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
        "packet_format": getattr(o, "packet_format", DEFAULT_FORMAT),
        "frames": n_frames, "packets": ctl["packets"],
        "payload_bits": ctl["payload_bits"], "header_bits": ctl["overhead_bits"],
        "header_bits_per_packet": round(ctl["overhead_bits"] / max(1, ctl["packets"]), 2),
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
                    "algorithmic_ms_lost_frame": round(algo_lost, 2),
                    "compute_ms_per_frame": compute,
                    "compute_ms_per_frame_total": round(compute_frame, 3),
                    "gnuradio_buffering": "not measured in a file run (unthrottled: queueing, "
                                          "not latency)"},
        "model_load_s": round(load_s, 2), "run_s": round(run_s, 2),
        "rtf": round(run_s / seconds, 3) if seconds else 0.0,
        "pacer_waits": ts["pacer"]["waits"],
        "text": _text_summary(o, ctl, dep, rx),
    }


def _text_summary(o, ctl, dep, rx) -> dict:
    """The text side channel: what was sent, what RX heard and when, and its bits."""
    from ..core.link import frames
    f = max(1, ctl["frames"])
    heard = [{"t_s": round(fr * frames.FRAME_SECONDS, 2), "frame": fr, "kind": kind, "text": text}
             for fr, kind, text in rx.depacketizer.heard]
    return {"callsign": getattr(o, "callsign", ""), "messages": list(getattr(o, "text", [])),
            "heard": heard, "last_callsign": dep.get("last_callsign", ""),
            "payload_bits": ctl.get("text_payload_bits", 0), "packets": ctl.get("text_packets", 0),
            "header_bits": ctl.get("text_overhead_bits", 0),
            "payload_bps": round(ctl.get("text_bps", 0.0), 2),
            "header_bps": round(ctl.get("text_overhead_bits", 0) * frames.FRAME_RATE / f, 2),
            "total_payload_bps": round(ctl.get("total_payload_bps", ctl["payload_bps"]), 2),
            "end_of_over_sent": ctl.get("end_of_over_packets", 0),
            "end_of_over_skipped": ctl.get("end_of_over_skipped", 0),
            "end_of_over_heard": dep.get("end_of_over", 0) > 0}


def _text_rows(t, budget, on_air=None) -> list:
    if not t or not (t["callsign"] or t["messages"] or t["heard"]):
        return []
    heard = "; ".join(f"{h['t_s']} s {h['kind']} {h['text']!r}" for h in t["heard"]) or "nothing"
    return [("text channel: call sign sent / last heard",
             f"{t['callsign'] or '-'} / {t['last_callsign'] or '-'}"
             f" (end of over {'heard' if t['end_of_over_heard'] else 'not heard'})"),
            ("text channel: heard (RX time, kind, text)", heard),
            ("text channel bits / bps (payload; + header)",
             f"{t['payload_bits']} / {t['payload_bps']}; + {t['header_bps']} bps in {t['packets']} packets"),
            ("speech + text payload", f"{t['total_payload_bps']} bps (budget B {budget:g} bps)"),
            *([("on-air rate with the text packets",
                f"{round(on_air + t['payload_bps'] + t['header_bps'], 2)} bps (voice {on_air} + text "
                f"{t['payload_bps']} + {t['header_bps']})")] if on_air is not None and t["packets"] else [])]


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
            *([("output alignment", f"advanced by {s['output_shift_ms']} ms (codec look-ahead and "
                                    f"sub-frame delay, less the resamplers'); {s['tail_pad_ms']} ms of "
                                    f"silence fed after the input")] if "output_shift_ms" in s else []),
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
            ("header bits per packet", s["header_bits_per_packet"]),
            ("payload + header = on-air (packet format " + s.get("packet_format", DEFAULT_FORMAT) + ")",
             f"{s['payload_bps']} + {s['header_bps']} = {s['on_air_bps']} bps"),
            *rate_rows,
            ("packets dropped" + (" (lost by the PHY)" if s.get("channel") == "phy" else ""),
             f"{s['packets_dropped']} ({s['channel_loss']:.1%})"),
            ("frames lost (no own packet, no copy)", f"{s['frames_lost']} of {s['frames_out']} "
                                                     f"({s['lost_fraction']:.1%})"),
            ("frames helped by copies", s["frames_with_copies"]),
            ("tokens by source", ", ".join(f"{k} {v}" for k, v in s["tokens"].items())),
            ("frames with generated / fallback tokens", f"{s['frames_generated']} / {s['frames_fallback']}"),
            ("RX loss estimate", s["loss_estimate_rx"]),
            *_text_rows(s.get("text"), s["bandwidth_bps"], s.get("on_air_bps")),
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
