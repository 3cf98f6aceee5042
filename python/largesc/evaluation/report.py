"""Markdown report (means with 95 % confidence intervals over utterances) and matplotlib plots."""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from . import systems as systems_mod
from .systems import RATE_COLUMNS

MAIN_METRICS = ("stoi", "pesq_wb", "visqol", "plcmos", "dnsmos_ovrl", "wer", "wer_base")
LABELS = {"stoi": "STOI", "pesq_wb": "PESQ-WB", "visqol": "ViSQOL v3 (speech)", "plcmos": "PLCMOS v2",
          "dnsmos_ovrl": "DNSMOS OVRL", "dnsmos_sig": "DNSMOS SIG", "dnsmos_bak": "DNSMOS BAK",
          "dnsmos_p808": "DNSMOS P.808", "wer": "WER (whisper tiny.en)",
          "wer_base": "WER (Whisper base, English clips)"}
PAIRED_AGAINST = ("largesc-no-uep", "largesc-repeat", "largesc-prefix", "codec2-700c", "codec2-1300",
                  "codec2-3200", "opus", "opus-dred")


def mean_ci(values) -> tuple[float, float, int]:
    """Mean and half-width of the 95 % t interval (nan half-width for n < 2)."""
    v = np.asarray([x for x in values if np.isfinite(x)], np.float64)
    n = len(v)
    if n == 0:
        return float("nan"), float("nan"), 0
    if n == 1:
        return float(v[0]), float("nan"), 1
    from scipy.stats import t
    return float(v.mean()), float(t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n)), n


def _bw(v):
    return None if v in ("", None) or (isinstance(v, float) and math.isnan(v)) else float(v)


def summarise(rows: list[dict]) -> dict:
    """{(system, loss_model, p, B, metric): (mean, ci, n)}, the mean payload rate per cell
    ("rate") and the mean payload / header / on-air rates per cell ("rates": {column: bps})."""
    vals = defaultdict(list)
    rates = {c: defaultdict(list) for c in RATE_COLUMNS}
    for r in rows:
        k = (r["system"], r["loss_model"], float(r["p"]), _bw(r["bandwidth_bps"]))
        vals[k + (r["metric"],)].append(float(r["value"]))
        for c in RATE_COLUMNS:
            v = r.get(c, "")
            if v not in ("", None) and np.isfinite(float(v)):
                rates[c][k].append(float(v))
    mean = {c: {k: float(np.nanmean(v)) for k, v in d.items() if v} for c, d in rates.items()}
    return {"stats": {k: mean_ci(v) for k, v in vals.items()}, "rate": mean["payload_bps"], "rates": mean}


def _rate_cells(rates: dict, name: str) -> list:
    """Payload, header, on-air bps of a system (means over its cells); '-' where not modelled."""
    out = []
    for c in RATE_COLUMNS:
        v = [x for k, x in rates[c].items() if k[0] == name]
        out.append(f"{np.mean(v):.0f} bps" if v else "-")
    return out


def _cell(m, ci, fmt="{:.3f}"):
    if not np.isfinite(m):
        return "-"
    return fmt.format(m) + ("" if not np.isfinite(ci) else " ± " + fmt.format(ci))


def write_report(rows: list[dict], out_dir: str | Path, meta: dict, plots: bool = True) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s = summarise(rows)
    stats, rate = s["stats"], s["rate"]
    profile = meta.get("profile", "?")
    sys_order = [x for x in meta.get("systems", []) if any(r["system"] == x for r in rows)]
    sys_order += sorted({r["system"] for r in rows} - set(sys_order))
    conds = sorted({(r["loss_model"], float(r["p"])) for r in rows if r["loss_model"] != "none"})
    bws = sorted({b for b in (_bw(r["bandwidth_bps"]) for r in rows) if b is not None})
    metrics_present = [m for m in MAIN_METRICS if any(r["metric"] == m for r in rows)]
    extra_metrics = sorted({r["metric"] for r in rows} - set(metrics_present))
    utts = sorted({r["utterance"] for r in rows})
    L = []
    L.append(f"# gr-largesc evaluation: profile `{profile}`\n")
    L.append(f"Command: `{meta.get('command', '')}`  ")
    L.append(f"Model profile: **{profile}** ({meta.get('model', '')}); LargeSC recovery: `{meta.get('recovery', '')}`  ")
    L.append(f"Speech: {len(utts)} utterances from `{meta.get('speech', '')}` (held out from all training): "
             + ", ".join(f"`{u}`" for u in utts) + "  ")
    L.append(f"Loss: one seeded trace per (utterance, loss model, p) on a 20 ms slot grid, seed {meta.get('seed')}, "
             f"rule `{meta.get('slot_rule')}` (a packet is lost iff the slot in which its audio ends is lost"
             + (", or any slot it spans" if meta.get("slot_rule") == "any" else "")
             + f"); Gilbert-Elliott mean burst {meta.get('burst_ms')} ms unless the model names its own "
             "(`gilbert_elliott@400`: 400 ms mean, i.e. 5 LargeSC packets of 80 ms).  ")
    if meta.get("partial"):
        L.append(f"**Partial:** {meta['partial']} (started {meta.get('started', '?')}).  ")
    runs = meta.get("runs") or []
    if len(runs) > 1:
        L.append(f"Wall time: {sum(r['wall_s'] for r in runs):.0f} s in {len(runs)} runs (resumed or sharded: "
                 + ", ".join(f"{r['wall_s']:.0f} s" for r in runs) + f") on {meta.get('machine', 'this machine')} "
                 f"(--jobs {meta.get('jobs', 1)}).  ")
    elif meta.get("wall_s") is not None:
        L.append(f"Wall time: {meta['wall_s']:.0f} s on {meta.get('machine', 'this machine')} "
                 f"(--jobs {meta.get('jobs', 1)}).  ")
    L.append("Values: mean ± half-width of the 95 % t confidence interval over utterances. "
             "Higher is better except WER. All metrics at 16 kHz on envelope-aligned signals "
             "(lag from each system's loss-free decode); Codec 2 is narrowband (8 kHz), so PESQ-WB and "
             "ViSQOL penalise its bandwidth as well as its coding.\n")
    L.append("LargeSC: one 80 ms frame per packet, copy distance d = 1, controller budget B with the condition's "
             f"p as its loss estimate, content importance from `{meta.get('activity', 'codec')}` activity; "
             "baselines get p as their loss hint where they take one (Opus in-band FEC).\n")
    if profile in ("tiny", "kyutai-arch"):
        L.append(f"**Note:** profile `{profile}` has random weights: LargeSC's output is noise, so its numbers "
                 "test the harness, not the method.\n")
    L.append("## Systems\n")
    L.append("| system | packet | payload rate (mean over conditions) | header rate | on-air rate | "
             "algorithmic latency |")
    L.append("|---|---|---|---|---|---|")
    for name in sys_order:
        sysobj = systems_mod.SYSTEMS.get(name)
        r_all = [v for k, v in rate.items() if k[0] == name]
        pk = sysobj.packet_ms if sysobj else 0
        lat = systems_mod.algorithmic_latency_ms(sysobj, meta.get("recovery", "moshi"),
                                                 meta.get("profile", "tiny")) if sysobj else {}
        lat_s = (f"{sum(lat.values()):.0f} ms (packet {lat['packet']:.0f} + lookahead {lat['lookahead']:.1f} "
                 f"+ receiver wait {lat['receiver_wait']:.0f} + recovery {lat['recovery']:.0f}"
                 + (f" - overlap {-lat['overlap']:.0f}" if lat.get("overlap") else "") + ")") if lat else ""
        pay, head, air = _rate_cells(s["rates"], name)
        L.append(f"| {name} | {pk:g} ms | {pay} | {head} | {air} | {lat_s} |"
                 if r_all and np.isfinite(np.mean(r_all)) else f"| {name} | - | - | - | - | - |")
    for name in sys_order:
        sysobj = systems_mod.SYSTEMS.get(name)
        r_all = [v for k, v in rate.items() if k[0] == name]
        if sysobj and sysobj.uses_bandwidth and r_all and max(r_all) <= 550.0 + 1e-6 and max(bws or [550.0]) > 550.0:
            L.append(f"\n**{name}: the controller classified no frame as speech** (every frame at the 4-token "
                     f"floor, 550 bps, no copies, whatever B): the content importance from the codec's "
                     f"activity (`activity: {meta.get('activity', 'codec')}`) never crossed its threshold. "
                     "With the random-weight `tiny` codec the latent level is flat; `--activity audio` takes "
                     "the importance from the input level instead.")
            break
    L.append("\nAlgorithmic latency counts packetisation, codec look-ahead and the receiver's waits "
             "(LargeSC: copy distance d = 1 frame; `latent`, `interp` and `moshi` recovery hold one frame, which "
             "overlaps the mini codec's one-frame look-ahead and the copy wait, docs/latency.md); it excludes "
             "processing time. Payload rates count codec payload only (LargeSC: token bits); the header "
             "rate is LargeSC's header + CRC + padding (packet format "
             f"`{meta.get('packet_format', 'v1')}`, docs/packet-format.md) and on air = payload + header. "
             "The baselines' own framing (RTP/UDP or a PHY's) is not modelled: '-'.\n")
    if meta.get("flowgraph_latency"):
        L.append("### LargeSC latency, measured on the GNU Radio flowgraph\n")
        L.append(meta["flowgraph_latency"] + "\n")
        L.append("(The flowgraph runs with d = d_max = 1, as the sweep; docs/latency.md.)\n")
    for m in metrics_present + extra_metrics:
        L.append(f"## {LABELS.get(m, m)}\n")
        for bw in (bws or [None]):
            head = ["system"] + [f"{lm} p={p:g}" for lm, p in conds]
            L.append(f"B = {bw:g} bps (LargeSC); baselines at their own rate\n" if bw else "")
            L.append("| " + " | ".join(head) + " | clean ref |")
            L.append("|" + "---|" * (len(head) + 1))
            for name in sys_order:
                if name == "reference":
                    continue
                cells = []
                for lm, p in conds:
                    k = (name, lm, p, bw if systems_mod.SYSTEMS.get(name, systems_mod.SYSTEMS["opus"]).uses_bandwidth else None, m)
                    st = stats.get(k)
                    cells.append(_cell(*st[:2]) if st else "-")
                L.append(f"| {name} | " + " | ".join(cells) + " | |")
            ref = stats.get(("reference", "none", 0.0, None, m))
            if ref:
                L.append("| reference (input) | " + " | ".join("" for _ in conds) + f" | {_cell(*ref[:2])} |")
            L.append("")
    L += paired_section(rows, bws)
    plots = write_plots(rows, out_dir, profile, sys_order, conds, bws, metrics_present) if plots else []
    if plots:
        from . import headline
        h = headline.plot(rows, out_dir / "headline.png", f"Quality against on-air bit rate: profile {profile}, "
                          f"{len(utts)} utterances")
        plots = ([h] if h else []) + plots
    if plots:
        L.append("## Plots\n")
        for p in plots:
            L.append(f"![{p.stem}]({p.name})\n")
    if meta.get("utterances"):
        L.append("## Speech\n")
        L.append("| utterance | seconds | source | licence | transcript |")
        L.append("|---|---|---|---|---|")
        for u in meta["utterances"]:
            L.append(f"| {u['id']} | {u['seconds']:.2f} | {u['source']} | {u['licence']} | {u['text']} |")
        L.append("")
    L.append("## Files\n")
    L.append("- `results.csv`: one row per (utterance, system, condition, metric): columns "
             "utterance, system, profile, recovery, loss_model, p, bandwidth_bps, packet_ms, payload_bps, "
             "header_bps, on_air_bps, lost_fraction, metric, value, seed.")
    path = out_dir / "report.md"
    path.write_text("\n".join(L) + "\n")
    return path


def paired(rows: list[dict], a: str, b: str, lm: str, p: float, bw: float | None, metric: str):
    """Mean of (a - b) over the utterances both have, with its 95 % t interval: (mean, lo, hi, n).
    `b` is read at budget bw only if it follows the budget (LargeSC), else at its own rate."""
    def vals(name):
        sysobj = systems_mod.SYSTEMS.get(name)
        want = bw if sysobj is None or sysobj.uses_bandwidth else None
        return {(r["utterance"], r.get("seed")): float(r["value"]) for r in rows
                if r["system"] == name and r["loss_model"] == lm and abs(float(r["p"]) - p) < 1e-9
                and _bw(r["bandwidth_bps"]) == want and r["metric"] == metric}
    va, vb = vals(a), vals(b)
    d = [va[u] - vb[u] for u in sorted(set(va) & set(vb)) if np.isfinite(va[u]) and np.isfinite(vb[u])]
    m, ci, n = mean_ci(d)
    return m, m - ci, m + ci, n


def paired_section(rows: list[dict], bws) -> list[str]:
    """`largesc` minus each other system, paired by utterance, at p = 0.3 (or the highest p) for
    each loss model and budget: the comparisons a reader asks first."""
    have = {r["system"] for r in rows}
    against = [x for x in PAIRED_AGAINST if x in have]
    if "largesc" not in have or not against or not bws:
        return []
    ps = sorted({float(r["p"]) for r in rows if r["loss_model"] != "none"})
    p = 0.3 if 0.3 in ps else max(ps)
    lms = sorted({r["loss_model"] for r in rows if r["loss_model"] != "none"})
    metrics = [m for m in ("stoi", "plcmos", "wer_base", "wer") if any(r["metric"] == m for r in rows)]
    L = ["## LargeSC against each system, paired by utterance\n",
         f"`largesc` minus the named system at p = {p:g}: mean difference [95 % t interval] over the utterances "
         "both have (n). Higher is better for LargeSC except WER (negative: LargeSC makes fewer errors). "
         "An interval that excludes zero is marked **bold**; the intervals are not corrected for the "
         "number of comparisons (about 1 in 20 excludes zero by chance).\n"]
    cols = [(lm, b) for lm in lms for b in bws]
    for m in metrics:
        L.append(f"### {LABELS.get(m, m)}\n")
        L.append("| largesc minus | " + " | ".join(f"{lm}, B = {b:g}" for lm, b in cols) + " |")
        L.append("|---|" + "---|" * len(cols))
        for x in against:
            cells = []
            for lm, b in cols:
                mu, lo, hi, n = paired(rows, "largesc", x, lm, p, b, m)
                if n < 2 or not np.isfinite(lo):
                    cells.append("-")
                    continue
                txt = f"{mu:+.3f} [{lo:+.3f}, {hi:+.3f}] ({n})"
                cells.append(f"**{txt}**" if lo > 0 or hi < 0 else txt)
            L.append(f"| {x} | " + " | ".join(cells) + " |")
        L.append("")
    return L


def write_plots(rows, out_dir: Path, profile: str, sys_order, conds, bws, metrics_present) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    s = summarise(rows)
    stats, rate = s["stats"], s["rate"]
    out = []
    names = [n for n in sys_order if n != "reference"]
    loss_models = sorted({lm for lm, _ in conds})
    ncol = 3
    nrow = max(1, math.ceil(len(metrics_present) / ncol))
    for lm in loss_models:
        for bw in (bws or [None]):
            fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
            for ax, m in zip(axes.flat, metrics_present):
                for name in names:
                    sysobj = systems_mod.SYSTEMS.get(name)
                    b = bw if sysobj and sysobj.uses_bandwidth else None
                    pts = sorted((p, stats[(name, lm, p, b, m)]) for l2, p in conds if l2 == lm
                                 and (name, lm, p, b, m) in stats)
                    if not pts:
                        continue
                    xs = [p for p, _ in pts]
                    ys = [v[0] for _, v in pts]
                    es = [0 if not np.isfinite(v[1]) else v[1] for _, v in pts]
                    ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=name)
                ref = stats.get(("reference", "none", 0.0, None, m))
                if ref:
                    ax.axhline(ref[0], color="grey", ls=":", lw=1, label="input")
                ax.set_xlabel("loss rate p")
                ax.set_title(LABELS.get(m, m), fontsize=9)
                ax.grid(alpha=0.3)
            for ax in list(axes.flat)[len(metrics_present):]:
                ax.axis("off")
            axes.flat[0].legend(fontsize=7)
            bws_txt = f", LargeSC B = {bw:g} bps" if bw else ""
            fig.suptitle(f"Metric vs loss rate ({lm}{bws_txt}); model profile: {profile}", fontsize=10)
            fig.tight_layout()
            p = out_dir / f"metric_vs_p_{lm}" f"{'_B' + format(bw, 'g') if bw else ''}.png"
            fig.savefig(p, dpi=80)
            plt.close(fig)
            out.append(p)
    # quality vs payload bitrate
    qm = [m for m in ("stoi", "plcmos", "visqol", "wer") if m in metrics_present]
    if qm:
        fig, axes = plt.subplots(1, len(qm), figsize=(4.2 * len(qm), 3.4), squeeze=False)
        markers = "osD^vP*X"
        ps = sorted({p for _, p in conds})
        for ax, m in zip(axes.flat, qm):
            for i, name in enumerate(names):
                xs, ys, lab = [], [], []
                for (n2, lm, p, b), r in sorted(rate.items(), key=lambda kv: (kv[0][2], kv[0][3] or 0)):
                    if n2 != name or lm != loss_models[0] or (n2, lm, p, b, m) not in stats:
                        continue
                    xs.append(r)
                    ys.append(stats[(n2, lm, p, b, m)][0])
                    lab.append(p)
                if xs:
                    ax.plot(xs, ys, marker=markers[i % len(markers)], ls="", label=name)
                    for x, y, p in zip(xs, ys, lab):
                        ax.annotate(f"p={p:g}", (x, y), fontsize=6, xytext=(2, 2), textcoords="offset points")
            ax.set_xscale("log")
            from matplotlib.ticker import NullFormatter, ScalarFormatter
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("payload bitrate (bps)")
            ax.set_title(LABELS.get(m, m), fontsize=9)
            ax.grid(alpha=0.3, which="both")
        axes.flat[0].legend(fontsize=7)
        fig.suptitle(f"Quality vs payload bitrate ({loss_models[0]}, p in {', '.join(f'{p:g}' for p in ps)}); "
                     f"model profile: {profile}", fontsize=10)
        fig.tight_layout()
        p = out_dir / "quality_vs_bitrate.png"
        fig.savefig(p, dpi=80)
        plt.close(fig)
        out.append(p)
    return out
