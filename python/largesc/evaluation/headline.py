"""The headline figure: quality (STOI, WER) against on-air bit rate at p = 0 and p = 0.3, every
system, with the rates at which LargeSC wins shaded.

On-air rate: LargeSC's payload + header + CRC + padding (its `on_air_bps`); the baselines' own
framing is not modelled, so they sit at their payload rate (which favours them). "LargeSC wins at
rate R": at least one baseline fits in R, and the best mean LargeSC (`largesc`, the shipped
configuration) point at an on-air rate <= R is better than the best mean baseline point at a rate
<= R, i.e. at that budget a link carries better speech with LargeSC than with any baseline that
fits. Rates below the cheapest baseline, where only LargeSC runs, are not shaded.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .report import mean_ci

LSC = "largesc"
PANEL_PS = (0.0, 0.3)


def _wer_metric(rows) -> str | None:
    have = {r["metric"] for r in rows}
    return "wer_base" if "wer_base" in have else ("wer" if "wer" in have else None)


def points(rows: list[dict], loss_model: str, p: float, metric: str) -> dict:
    """{system: [(on-air bps, mean, ci half-width, B)]} for one condition (reference excluded)."""
    cells: dict = {}
    for r in rows:
        if r["metric"] != metric or r["system"] == "reference" or r["loss_model"] != loss_model \
                or abs(float(r["p"]) - p) > 1e-9:
            continue
        b = r["bandwidth_bps"]
        key = (r["system"], None if b in ("", None) else float(b))
        rate = r.get("on_air_bps")
        if rate in ("", None) or not np.isfinite(float(rate)):
            rate = r.get("payload_bps")
        c = cells.setdefault(key, {"v": [], "rate": []})
        c["v"].append(float(r["value"]))
        c["rate"].append(float(rate))
    out: dict = {}
    for (name, b), c in cells.items():
        m, ci, _ = mean_ci(c["v"])
        out.setdefault(name, []).append((float(np.nanmean(c["rate"])), m, ci, b))
    return {k: sorted(v) for k, v in out.items()}


def win_intervals(pts: dict, lower_is_better: bool) -> list[tuple[float, float]]:
    """On-air rate intervals [a, b) where some baseline fits in R and the best `largesc` point at
    <= R beats the best baseline point at <= R (module docstring); b is inf when LargeSC stays
    ahead up to the last point."""
    sign = -1.0 if lower_is_better else 1.0
    lsc = [(x, sign * m) for x, m, _, _ in pts.get(LSC, []) if np.isfinite(m)]
    base = [(x, sign * m) for name, v in pts.items() if not name.startswith("largesc")
            for x, m, _, _ in v if np.isfinite(m)]
    if not lsc:
        return []
    xs = sorted({x for x, _ in lsc + base})

    def best(pp, r):
        v = [m for x, m in pp if x <= r]
        return max(v) if v else -np.inf

    out, start = [], None
    for x in xs:
        b = best(base, x)
        win = np.isfinite(b) and best(lsc, x) > b
        if win and start is None:
            start = x
        elif not win and start is not None:
            out.append((start, x))
            start = None
    if start is not None:
        out.append((start, np.inf))
    return out


def plot(rows: list[dict], out_path: str | Path, title: str = "", loss_model: str = "bernoulli") -> Path | None:
    """Write the figure (2 metrics x 2 loss rates); None when the rows lack p = 0 and 0.3."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullFormatter
    wer = _wer_metric(rows)
    metrics = [m for m in ("stoi", wer) if m and any(r["metric"] == m for r in rows)]
    ps = sorted({float(r["p"]) for r in rows if r["loss_model"] == loss_model})
    if not metrics or not all(any(abs(p - q) < 1e-9 for q in ps) for p in PANEL_PS):
        return None
    systems = sorted({r["system"] for r in rows if r["system"] != "reference"},
                     key=lambda s: (not s.startswith("largesc"), s != LSC, s))
    lsc_names = [x for x in systems if x.startswith("largesc")]
    base_names = [x for x in systems if not x.startswith("largesc")]
    colours = {x: c for x, c in zip(lsc_names, ["#0b3d91", "#5b8bd6", "#8fb3e8", "#b9cdea", "#d5e1f2"])}
    colours.update(zip(base_names, [c for c in plt.get_cmap("tab10").colors if c != plt.get_cmap("tab10").colors[0]]))
    fig, axes = plt.subplots(len(metrics), len(PANEL_PS), figsize=(11, 3.6 * len(metrics)), squeeze=False)
    xmax = 1.0
    for i, m in enumerate(metrics):
        low = m.startswith("wer")
        for j, p in enumerate(PANEL_PS):
            ax = axes[i][j]
            pts = points(rows, loss_model, p, m)
            for k, (a, b) in enumerate(win_intervals(pts, low)):
                ax.axvspan(a, b if np.isfinite(b) else 1e6, color="tab:green", alpha=0.12, lw=0,
                           label="LargeSC wins" if k == 0 else None)
            for name in systems:
                v = pts.get(name)
                if not v:
                    continue
                xs = [x for x, _, _, _ in v]
                xmax = max(xmax, max(xs))
                ys = [y for _, y, _, _ in v]
                es = [0 if not np.isfinite(e) else e for _, _, e, _ in v]
                main = name == LSC
                ax.errorbar(xs, ys, yerr=es, marker="o" if name.startswith("largesc") else "s",
                            ms=7 if main else 5, lw=2.2 if main else 1, capsize=2, color=colours[name],
                            ls="-" if name.startswith("largesc") else "", label=name, zorder=3 if main else 2,
                            alpha=1.0 if main or not name.startswith("largesc") else 0.6)
            ref = [float(r["value"]) for r in rows if r["system"] == "reference" and r["metric"] == m]
            if ref:
                ax.axhline(float(np.mean(ref)), color="grey", ls=":", lw=1, label="input (clean)")
            ax.set_xscale("log")
            ticks = [500, 1000, 2000, 5000, 10000, 20000]
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.set_xticklabels([f"{t / 1000:g}k" for t in ticks])
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlim(400, max(25000, xmax * 1.2))
            ax.grid(alpha=0.3, which="both")
            name_m = {"wer_base": "WER (Whisper base)", "wer": "WER (Whisper tiny.en)"}.get(m, "STOI")
            ax.set_title(f"{name_m}{', lower is better' if low else ''}: {loss_model} p = {p:g}", fontsize=10)
    handles, labels = axes[0][-1].get_legend_handles_labels()
    for ax in axes.flat:
        h, lab = ax.get_legend_handles_labels()
        for hh, ll in zip(h, lab):
            if ll not in labels:
                handles.append(hh)
                labels.append(ll)
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    fig.suptitle(title or "Quality against on-air bit rate", fontsize=11)
    fig.supxlabel("on-air bit rate (bps, log scale): LargeSC payload + header; baselines payload only. "
                  "Bars: 95 % intervals over utterances. Shaded: LargeSC's mean beats every baseline that fits",
                  fontsize=8)
    fig.tight_layout(rect=(0, 0, 0.86, 0.97))
    out_path = Path(out_path)
    fig.savefig(out_path, dpi=90)
    plt.close(fig)
    return out_path
