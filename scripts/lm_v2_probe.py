#!/usr/bin/env python3
"""A Moshi LM trained on mini v2 tokens (base and + LoRA; moshi-mmse and moshi) against latent,
repeat and prefix: `unseen` clips, B = 1100 bps, Bernoulli p = 0.2 and 0.4, UEP on, sequential
decode, STOI and PLCMOS, paired 95 % bootstrap (docs/recovery.md "A Moshi LM on v2 tokens").

    .venv/bin/python scripts/lm_v2_probe.py N LM_DIR LORA_DIR OUT.json

LM_DIR: an exported LM (model.safetensors + config.json) of `gr-largesc train-lm --tokens` on the
tokens of `gr-largesc train-codec2 --export-tokens`; LORA_DIR: `gr-largesc train-lora` on it. The
LM is loaded through the mini-v1 architecture (same config), with mini v2's codebooks for the
soft decision.
"""
import json
import sys
import time

import numpy as np

from gnuradio.largesc.core.recovery import build
from gnuradio.largesc.evaluation import largesc_system as ls
from gnuradio.largesc.evaluation import losstrace, metrics, speech

n = int(sys.argv[1]); lm_dir = sys.argv[2]; lora = sys.argv[3] if len(sys.argv) > 3 else None
utts = speech.load(speech.resolve("unseen")); utts = utts[::max(1, len(utts) // n)][:n]
codec = ls.get_codec("mini")
kw = dict(profile="mini-v1", lm_weights=f"{lm_dir}/model.safetensors", lm_config=f"{lm_dir}/config.json", codec=codec)
ls._RECOVERY[("mmse-base", "mini", None, None)] = build("moshi-mmse", lora="none", **kw)
strats = ["prefix", "repeat", "latent", "mmse-base"]
if lora:
    ls._RECOVERY[("mmse-lora", "mini", None, None)] = build("moshi-mmse", lora=lora, **kw)
    ls._RECOVERY[("moshi-lora", "mini", None, None)] = build("moshi", lora=lora, **{k: v for k, v in kw.items() if k != "codec"})
    strats += ["mmse-lora", "moshi-lora"]
res = {}; t0 = time.time()
for u in utts:
    x = u["audio"]; dur = len(x) / 16000
    y0, _ = ls.run(x, losstrace.LossTrace.none(int(dur * 50) + 100), profile="mini", bandwidth_bps=1100, recovery="repeat")
    lag = metrics.estimate_lag(x, y0)
    for p in (0.2, 0.4):
        tr = losstrace.make_trace(u["id"], dur, "bernoulli", p, 0, 160.)
        for s in strats:
            y, _ = ls.run(x, tr, profile="mini", bandwidth_bps=1100, p=p, recovery=s, overlap=False)
            for k, v in metrics.score(x, y, lag, "", ("stoi", "plcmos")).items():
                res.setdefault(f"{p}|{k}|{s}", []).append(v)
    print(f"{time.time()-t0:.0f} s {u['id']}", file=sys.stderr, flush=True)
def boot(d):
    rng = np.random.default_rng(0); idx = rng.integers(0, len(d), (5000, len(d))); m = d[idx].mean(1)
    return f"{d.mean():+.3f} [{np.percentile(m,2.5):+.3f}, {np.percentile(m,97.5):+.3f}]"
for p in (0.2, 0.4):
    for k in ("stoi", "plcmos"):
        print(f"p={p} {k}: " + " ".join(f"{s} {np.mean(res[f'{p}|{k}|{s}']):.3f}" for s in strats))
        for a, b in [("mmse-base", "repeat"), ("mmse-base", "latent")] + ([("mmse-lora", "repeat"), ("mmse-lora", "mmse-base"), ("moshi-lora", "repeat"), ("mmse-lora", "latent")] if lora else []):
            print(f"   {a} - {b}: {boot(np.array(res[f'{p}|{k}|{a}']) - np.array(res[f'{p}|{k}|{b}']))}")
json.dump(res, open(sys.argv[4] if len(sys.argv) > 4 else "/tmp/lm2_probe.json", "w"))
