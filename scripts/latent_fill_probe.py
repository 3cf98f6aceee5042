#!/usr/bin/env python3
"""The routes table of the latent predictor's model card (docs/models/mini.md): `latent` filling
not-sent codebooks or not, `interp` likewise, against prefix / repeat / oracle; every 5th clip of
the `unseen` set (N of them), B = 1100 bps, Bernoulli p = 0.2 and 0.4 and GE 160 ms bursts,
STOI and PLCMOS through the evaluation path, decoded sequentially (as when the table was made).

    .venv/bin/python scripts/latent_fill_probe.py 12

The variants are built here and injected into the evaluation's strategy cache: `latent` as
build() makes it (lost codebooks only) and `latent-fill` (not-sent codebooks filled too, the
route not taken); `interp` and `interp-nofill` likewise. With `--repeat-fine` it also runs
`latent-rep2` / `latent-rep4`: `latent`, then lost codebooks from 2 (or 4) on taken from the last
frame out, as `repeat` does (fine detail instead of the predictor's smooth estimate; a route
tried in session 8, not taken).

    .venv/bin/python scripts/latent_fill_probe.py 12 --repeat-fine
"""
import sys
import time

import numpy as np

from gnuradio.largesc.core.link import frames
from gnuradio.largesc.core.recovery import build
from gnuradio.largesc.evaluation import largesc_system as ls
from gnuradio.largesc.evaluation import losstrace, metrics, speech

args = [a for a in sys.argv[1:] if not a.startswith("--")]
n = int(args[0]) if args else 12
utts = speech.load(speech.resolve("unseen"))
utts = utts[::max(1, len(utts) // n)][:n]
codec = ls.get_codec("mini")
from gnuradio.largesc.core.recovery.latent import LatentRecovery, predictor_dir
from gnuradio.largesc.core.recovery.latent_predictor import load_predictor

ls._RECOVERY[("latent-fill", "mini", None, None)] = LatentRecovery(codec, load_predictor(predictor_dir("mini")),
                                                                   fill_not_sent=True)
ls._RECOVERY[("interp-nofill", "mini", None, None)] = build("interp", codec=codec, fill_not_sent=False)
strats = ["prefix", "repeat", "interp", "interp-nofill", "latent-fill", "latent", "oracle"]


class LatentRepeatFine(LatentRecovery):
    """`latent`, then lost codebooks from `k` on repeated from the last frame out."""

    def __init__(self, codec, predictor, k):
        super().__init__(codec, predictor)
        self.k = k

    def reset(self):
        super().reset()
        self._last = None

    def _fill(self, tokens, states, nxt):
        out_t, out_s = super()._fill(tokens, states, nxt)
        if self._last is not None:
            rep = (self.wanted(states) & (np.arange(len(out_t)) >= self.k)
                   & np.isin(self._last[1], frames.DECODABLE_STATES))
            out_t = np.where(rep, self._last[0], out_t)
        self._last = (out_t.copy(), out_s.copy())
        return out_t, out_s


if "--repeat-fine" in sys.argv:
    for k in (2, 4):
        ls._RECOVERY[(f"latent-rep{k}", "mini", None, None)] = LatentRepeatFine(
            codec, load_predictor(predictor_dir("mini")), k)
    strats[-1:-1] = ["latent-rep2", "latent-rep4"]
res = {}
t0 = time.time()
for u in utts:
    x = u["audio"]; dur = len(x) / 16000
    y0, _ = ls.run(x, losstrace.LossTrace.none(int(dur * 50) + 100), profile="mini", bandwidth_bps=1100, recovery="repeat")
    lag = metrics.estimate_lag(x, y0)
    for model, p, burst in (("bernoulli", 0.2, 160.), ("bernoulli", 0.4, 160.), ("gilbert_elliott", 0.2, 160.)):
        tr = losstrace.make_trace(u["id"], dur, model, p, 0, burst)
        for s in strats:
            y, info = ls.run(x, tr, profile="mini", bandwidth_bps=1100, p=p, recovery=s, overlap=False)
            sc = metrics.score(x, y, lag, "", ("stoi", "plcmos"))
            for k, v in sc.items():
                res.setdefault((model, p, k, s), []).append(v)
    print(f"{time.time()-t0:.0f} s {u['id']}", file=sys.stderr, flush=True)
for (model, p, k) in sorted({(a, b, c) for a, b, c, _ in res}):
    base = np.array(res[(model, p, k, "prefix")])
    line = f"{model} p={p} {k}: " + " ".join(f"{s} {np.mean(res[(model,p,k,s)]):.3f}" for s in strats)
    d = np.array(res[(model, p, k, "latent")]) - base
    d2 = np.array(res[(model, p, k, "latent-fill")]) - base
    print(line, f"| latent-prefix {d.mean():+.3f} latent-fill-prefix {d2.mean():+.3f}")
