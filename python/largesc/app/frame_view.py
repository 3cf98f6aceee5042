"""One picture of a run: input and output spectrograms over a per-frame strip of what happened to
each frame's eight codebooks (received, copy, generated, lost, not sent).

`gr-largesc run` writes it beside the output wav and the demo beside report.md. The strip is the
receiver's own account (LargeSC RX's `states` output, after recovery), so a frame drawn as lost
(codebook 0 neither received nor copied) is one the report counts in "frames lost".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.link import frames

# state -> (colour, legend); the order of STATE_* codes
STATE_STYLE = {frames.STATE_ORIGINAL: ("#2e7d32", "received"), frames.STATE_COPY: ("#1565c0", "copy (UEP)"),
               frames.STATE_LOST: ("#c62828", "lost"), frames.STATE_NOT_SENT: ("#e0e0e0", "not sent"),
               frames.STATE_GENERATED: ("#f9a825", "generated"), frames.STATE_FALLBACK: ("#6a1b9a", "fallback")}


def lost_frames(states: np.ndarray) -> np.ndarray:
    """[F] bool: frames whose codebook 0 was neither received nor copied (the report's "frames lost")."""
    return ~np.isin(np.asarray(states)[:, 0], frames.KNOWN_STATES)


def write_frame_view(path: str | Path, x: np.ndarray, rate_in: int, y: np.ndarray, rate_out: int,
                     states: np.ndarray, title: str = "") -> dict:
    """Write the PNG; returns {"frames": F, "frames_lost": n} as drawn. states: [F, 8] uint8."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    states = np.asarray(states, np.uint8).reshape(-1, frames.NUM_CODEBOOKS)
    nfr = len(states)
    dur = nfr * frames.FRAME_SECONDS
    fig, ax = plt.subplots(3, 1, figsize=(10, 6.5), sharex=True,
                           gridspec_kw={"height_ratios": [3, 3, 1.6]})
    for a, sig, rate, name in ((ax[0], x, rate_in, "input"), (ax[1], y, rate_out, "output")):
        sig = np.asarray(sig, np.float64)
        if len(sig) > 256:
            a.specgram(sig + 1e-9, NFFT=512, Fs=rate, noverlap=384, cmap="magma", vmin=-120)
        a.set_ylim(0, min(rate / 2, 8000))
        a.set_ylabel(f"{name}\nHz")
    codes = sorted(STATE_STYLE)
    cmap = ListedColormap([STATE_STYLE[c][0] for c in codes])
    norm = BoundaryNorm(np.arange(len(codes) + 1) - 0.5, cmap.N)
    ax[2].imshow(states.T, aspect="auto", cmap=cmap, norm=norm, interpolation="nearest", origin="lower",
                 extent=(0, dur, -0.5, frames.NUM_CODEBOOKS - 0.5))
    lost = lost_frames(states)
    for f in np.flatnonzero(lost):
        ax[2].axvspan(f * frames.FRAME_SECONDS, (f + 1) * frames.FRAME_SECONDS, ymin=0.0, ymax=0.04, color="black")
    ax[2].set_ylabel("codebook")
    ax[2].set_xlabel("time (s); black ticks: frames lost")
    ax[2].set_xlim(0, dur)
    ax[2].legend(handles=[Patch(color=STATE_STYLE[c][0], label=STATE_STYLE[c][1]) for c in codes],
                 ncol=6, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.45), frameon=False)
    ax[0].set_title(title or f"{nfr} frames, {int(lost.sum())} lost")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return {"frames": int(nfr), "frames_lost": int(lost.sum())}
