"""Sweep execution: tasks, content-hash cache, local processes (--jobs), shards, CSV rows.

A task is one (utterance, system): it decodes the loss-free condition once (for the alignment
lag) and then every condition of the grid, and scores each decode. Tasks are independent of
the order they run in (models re-seeded per task), so --jobs and --shard give the same rows.

Cache (--cache-dir, default ~/.cache/gr-largesc/eval): decodes under decode/<sha256>.npz keyed by
(code version, system, condition, profile fingerprint, input audio hash, loss-trace hash), and
scores under metrics/<sha256>.json keyed by (metric version, reference hash, decoded audio
hash, lag, transcript, metric list). --no-cache turns both off.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.link.packet_formats import DEFAULT_FORMAT
from ..core.profiles import DEFAULT_PROFILE, MINI_FAMILY
from . import losstrace, metrics, systems

CODE_VERSION = "e1"
COLUMNS = ["utterance", "system", "profile", "recovery", "loss_model", "p", "bandwidth_bps", "packet_ms",
           "payload_bps", "header_bps", "on_air_bps", "lost_fraction", "metric", "value", "seed"]
RATE_COLUMNS = systems.RATE_COLUMNS
OLD_COLUMNS = [c for c in COLUMNS if c not in ("header_bps", "on_air_bps")]   # results before the on-air columns (0.2.x)


@dataclass
class Config:
    profile: str = DEFAULT_PROFILE
    recovery: str = "moshi"
    lora: str | None = None
    systems: tuple = ("largesc", "largesc-no-uep", "opus", "codec2-1300")
    loss_models: tuple = ("bernoulli",)
    ps: tuple = (0.0, 0.3)
    bandwidths: tuple = (1100.0,)
    metrics: tuple = metrics.METRICS
    seed: int = 0
    burst_ms: float = 160.0
    slot_rule: str = "last"
    cache_dir: str | None = None
    activity: str = "codec"
    temperature: float | None = None          # moshi recovery sampling temperature (None: its default)
    packet_format: str = DEFAULT_FORMAT                 # LargeSC packet format (core.link.packet_formats)

    def conditions(self, system: systems.System) -> list[tuple[str, float, float | None]]:
        """(loss model, p, B) for a system; B only for systems that follow the budget."""
        bws = self.bandwidths if system.uses_bandwidth else (None,)
        if system.kind == "reference":
            return [("none", 0.0, None)]
        return [(m, p, b) for m in self.loss_models for p in self.ps for b in bws]


def _h(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"|")
    return h.hexdigest()


def audio_hash(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, np.float32).tobytes()).hexdigest()


def profile_fingerprint(profile: str) -> str:
    """Profile name plus, for trained weights, the size and mtime of their files."""
    if profile not in MINI_FAMILY:
        return profile
    from ..core.codec import mini_weights_dir
    root = mini_weights_dir(profile=profile).parent
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    return _h(profile, [(str(p.relative_to(root)), p.stat().st_size, int(p.stat().st_mtime)) for p in files])


class Cache:
    def __init__(self, root: str | None):
        self.root = Path(root) if root else None

    def _path(self, kind: str, key: str, ext: str) -> Path | None:
        return None if self.root is None else self.root / kind / key[:2] / f"{key}.{ext}"

    def get_decode(self, key):
        p = self._path("decode", key, "npz")
        if p is None or not p.is_file():
            return None
        try:
            z = np.load(p, allow_pickle=False)
            return z["y"], json.loads(str(z["info"]))
        except Exception:
            return None

    def put_decode(self, key, y, info):
        p = self._path("decode", key, "npz")
        if p is None:
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, y=np.asarray(y, np.float32), info=json.dumps(info, default=float))
        os.replace(tmp, p)

    def get_scores(self, key):
        p = self._path("metrics", key, "json")
        if p is None or not p.is_file():
            return None
        try:
            return json.loads(p.read_text())
        except ValueError:
            return None

    def put_scores(self, key, scores):
        p = self._path("metrics", key, "json")
        if p is None:
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(scores))
        os.replace(tmp, p)


def _decode(cfg: Config, cache: Cache, system, utt, trace, p, bw):
    key = _h(CODE_VERSION, system.key(), profile_fingerprint(cfg.profile) if system.kind == "largesc" else "",
             cfg.recovery if system.kind == "largesc" else "", cfg.lora if system.kind == "largesc" else "",
             cfg.activity if system.kind == "largesc" else "",
             p, bw, cfg.seed, utt["hash"], trace.digest(),
             *(() if cfg.temperature is None or system.kind != "largesc" else (("temperature", cfg.temperature),)),
             *(() if cfg.packet_format == "v1" or system.kind != "largesc" else (("format", cfg.packet_format),)))
    hit = cache.get_decode(key)
    if hit is not None:
        return hit
    y, info = systems.run(system, utt["audio"], trace, p=p, bandwidth_bps=bw or 0.0, profile=cfg.profile,
                          recovery=cfg.recovery, lora=cfg.lora, seed=cfg.seed, activity=cfg.activity,
                          temperature=cfg.temperature, packet_format=cfg.packet_format)
    info = {k: v for k, v in info.items() if isinstance(v, (int, float, str))}
    cache.put_decode(key, y, info)
    return y, info


def _scores(cfg: Config, cache: Cache, utt, y, lag):
    key = _h(metrics.METRIC_VERSION, utt["hash"], audio_hash(y), int(lag), utt.get("text", ""),
             sorted(cfg.metrics), cfg.seed)
    hit = cache.get_scores(key)
    if hit is not None:
        return hit
    s = metrics.score(utt["audio"], y, int(lag), utt.get("text", ""), cfg.metrics, seed=cfg.seed)
    cache.put_scores(key, s)
    return s


def run_task(cfg: Config, utt: dict, system_name: str) -> list[dict]:
    """All conditions of one (utterance, system) -> CSV rows."""
    system = systems.get(system_name)
    cache = Cache(cfg.cache_dir)
    utt = dict(utt)
    utt.setdefault("hash", audio_hash(utt["audio"]))
    dur = len(utt["audio"]) / metrics.FS
    rows = []
    lag_by_bw: dict = {}
    for model, p, bw in cfg.conditions(system):
        if system.kind == "reference":
            lag = 0
        else:
            if bw not in lag_by_bw:   # lag from the loss-free decode of this system (same B)
                clean = losstrace.LossTrace.none(int(dur * 50) + 100)
                y0, _ = _decode(cfg, cache, system, utt, clean, 0.0, bw)
                lag_by_bw[bw] = metrics.estimate_lag(utt["audio"], y0)
            lag = lag_by_bw[bw]
        trace = losstrace.make_trace(utt["id"], dur, model, p, cfg.seed, cfg.burst_ms, cfg.slot_rule)
        y, info = _decode(cfg, cache, system, utt, trace, p, bw)
        scores = _scores(cfg, cache, utt, y, lag)
        lost_frac = info["lost"] / info["packets"] if info.get("packets") else 0.0
        for m in sorted(scores):
            rows.append({
                "utterance": utt["id"], "system": system.name,
                "profile": cfg.profile if system.kind == "largesc" else "",
                "recovery": (system.params["recovery"] or cfg.recovery) if system.kind == "largesc" else "",
                "loss_model": model, "p": p, "bandwidth_bps": "" if bw is None else bw,
                "packet_ms": info.get("packet_ms", ""),
                **{c: info.get(c, "") for c in RATE_COLUMNS},
                "lost_fraction": lost_frac, "metric": m, "value": scores[m], "seed": cfg.seed})
    return rows


# ----------------------------------------------------------------------------- process pool
def tasks_for(cfg: Config, n_utts: int, shard: tuple[int, int] = (0, 1)) -> list[tuple[int, str]]:
    """Deterministic task list, then every n-th from i for shard i/n (1-based on the CLI)."""
    all_tasks = [(u, s) for u in range(n_utts) for s in cfg.systems]
    i, n = shard
    return all_tasks[i::n]


def _num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return -1.0


def sort_rows(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["system"], r["loss_model"], _num(r["p"]), _num(r["bandwidth_bps"]),
                                       r["utterance"], r["metric"]))


_FLOAT_COLS = ("p", "bandwidth_bps", "packet_ms", *RATE_COLUMNS, "lost_fraction", "value")


def _fmt(v, col=""):
    if col in _FLOAT_COLS and isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = float(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return repr(round(v, 6)) if np.isfinite(v) else "nan"
    return v


def write_csv(path: str | Path, rows: list[dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k, ""), k) for k in COLUMNS})


def read_csv(path: str | Path) -> list[dict]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and list(rows[0].keys()) not in (COLUMNS, OLD_COLUMNS):
        raise ValueError(f"{path}: columns {list(rows[0].keys())} are not {COLUMNS}")
    for r in rows:
        for k in ("p", "value", "lost_fraction"):
            r[k] = float(r[k])
        r["seed"] = int(r["seed"])
        for k in ("bandwidth_bps", "packet_ms", *RATE_COLUMNS):
            r[k] = float(r[k]) if r.get(k) not in ("", None) else ""
    return rows
