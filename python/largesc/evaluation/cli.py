"""Command line of the evaluation harness (wired as `gr-largesc eval`).

Subcommands: `sweep` (the default), `prepare` (speech sets), `merge` (shard CSVs -> one CSV +
report), `report` (re-render a report from a CSV).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("NO_TORCH_COMPILE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PRESETS = {
    "quick": dict(speech="quick", utterances=4, ps=(0.0, 0.3), bandwidths=(1100.0,), loss_models=("bernoulli",),
                  systems=("largesc", "largesc-no-uep", "opus", "codec2-1300", "reference")),
    "test": dict(speech="test", utterances=2, ps=(0.0, 0.3), bandwidths=(1100.0,), loss_models=("bernoulli",),
                 systems=("largesc", "opus", "codec2-1300", "reference")),
    "paper": dict(speech="heldout", utterances=None, ps=(0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5),
                  bandwidths=(550.0, 825.0, 1100.0, 1650.0, 2062.5), loss_models=("bernoulli", "gilbert_elliott"),
                  systems=("largesc", "largesc-no-uep", "largesc-fixed-n", "largesc-repeat", "largesc-zero",
                           "largesc-prefix", "opus", "aac", "codec2-700c", "codec2-1300", "codec2-3200",
                           "reference")),
    # the standard report (docs/eval/standard-mini): 30 clips of unseen speakers (English, game
    # characters, fr-CA, German), Bernoulli and Gilbert-Elliott 160 ms / 1 s bursts; 1-2 h on 2 cores
    "standard": dict(speech="standard", utterances=None, ps=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
                     bandwidths=(550.0, 1100.0, 2062.5),
                     loss_models=("bernoulli", "gilbert_elliott@160", "gilbert_elliott@1000"),
                     systems=("largesc", "largesc-no-uep", "largesc-repeat", "largesc-prefix", "opus",
                              "opus-nofec", "opus-dred", "aac", "codec2-700c", "codec2-1300", "codec2-3200",
                              "reference"),
                     metrics=("stoi", "pesq_wb", "visqol", "plcmos", "wer_base")),
    # Gilbert-Elliott bursts of 400 ms and 1 s mean (5 and 12.5 LargeSC packets; 20 and 50 Opus
    # packets): LargeSC (d = 1) against Opus with in-band FEC and Codec 2, at both LargeSC budgets
    "bursts": dict(speech="quick", utterances=4, ps=(0.1, 0.2), bandwidths=(550.0, 1100.0),
                   loss_models=("gilbert_elliott@400", "gilbert_elliott@1000"),
                   systems=("largesc", "largesc-no-uep", "opus", "codec2-1300", "reference")),
}


def _floats(s: str) -> tuple:
    return tuple(float(x) for x in s.split(",") if x.strip())


def _names(s: str) -> tuple:
    return tuple(x.strip() for x in s.split(",") if x.strip())


def _shard(s: str) -> tuple[int, int]:
    i, n = (int(x) for x in s.split("/"))
    if not 1 <= i <= n:
        raise argparse.ArgumentTypeError("shard must be i/n with 1 <= i <= n")
    return i - 1, n


from ..core.link.packet_formats import DEFAULT_FORMAT, FORMATS  # noqa: E402
from ..core.profiles import DEFAULT_PROFILE, PROFILE_NAMES  # noqa: E402
from ..core.recovery.registry import CHOICES as RECOVERY_CHOICES  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    from . import losstrace, metrics, speech, systems
    ap = argparse.ArgumentParser(prog="gr-largesc eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")

    s = sub.add_parser("sweep", help="run a grid of systems x loss conditions over a speech set (default)")
    s.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    s.add_argument("--profile", default=DEFAULT_PROFILE, choices=PROFILE_NAMES, help="model profile for LargeSC")
    s.add_argument("--recovery", default="auto",
                   choices=RECOVERY_CHOICES,
                   help="token recovery of the `largesc` system (ablations fix their own); auto: the profile's "
                        "measured best (core/profiles.py AUTO_RECOVERY; moshi for LM profiles not listed)")
    s.add_argument("--lora", default=None, help="LoRA adapter folder for the moshi recovery LM (default: the "
                   "profile's shipped one, if any; 'none': the base LM)")
    s.add_argument("--temperature", type=float, default=None,
                   help="sampling temperature of the moshi recovery (default: its own, 0.8; 0: greedy)")
    s.add_argument("--activity", default="codec", choices=["codec", "audio"],
                   help="controller content importance from the codec's own activity source (as the blocks: "
                        "Mimi's latent level, mini's input level) or always the input level")
    s.add_argument("--systems", type=_names, help=f"comma list from: {', '.join(systems.SYSTEMS)}")
    s.add_argument("--p", dest="ps", type=_floats, help="comma list of loss rates")
    s.add_argument("--loss-models", type=_names, help=f"comma list from {', '.join(losstrace.LOSS_MODELS)}, "
                   "or gilbert_elliott@<mean burst ms> (a burst per model)")
    s.add_argument("--packet-format", default=DEFAULT_FORMAT, choices=list(FORMATS),
                   help="LargeSC packet format (docs/packet-format.md): sets its header and on-air rate")
    s.add_argument("--bandwidths", type=_floats, help="comma list of LargeSC budgets B (bps)")
    s.add_argument("--metrics", type=_names, default=None,
                   help=f"comma list from {', '.join(metrics.METRICS)}, wer_base (default: the preset's, else all "
                        "but wer_base)")
    s.add_argument("--speech", help=f"speech set name ({', '.join(speech.SETS)}) or manifest.json path")
    s.add_argument("--utterances", type=int, help="use the first N utterances of the set")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--burst-ms", type=float, default=160.0, help="Gilbert-Elliott mean burst length (ms)")
    s.add_argument("--slot-rule", choices=losstrace.SLOT_RULES, default="last")
    s.add_argument("--jobs", type=int, default=1, help="workers of the local Dask cluster")
    s.add_argument("--scheduler", default="local",
                   help="local: a dask LocalCluster of --jobs workers; ADDRESS: a running dask scheduler "
                        "(tcp://host:8786, e.g. dask-jobqueue on SLURM); none: in this process. "
                        "Each task's rows go to OUT/tasks/, so a killed sweep resumes"),
    s.add_argument("--shard", type=_shard, default=(0, 1), help="i/n: run every n-th task from i (1-based)")
    s.add_argument("--out", help="output directory (default out/eval/<preset>-<profile>)")
    s.add_argument("--cache-dir", default=None, help="content-hash cache (default ~/.cache/gr-largesc/eval)")
    s.add_argument("--no-cache", action="store_true")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--no-plots", action="store_true", help="report without plots")
    s.add_argument("--no-flowgraph-latency", action="store_true",
                   help="skip the flowgraph run (gr-largesc run) that measures LargeSC's latency table")

    s = sub.add_parser("prepare", help="prepare a speech set (writes wav files + manifest.json)")
    s.add_argument("--set", default="heldout", choices=speech.SETS)
    s.add_argument("--cache-dir", default=None)
    s.add_argument("--out", default=None, help="directory (default <cache>/speech/<set>)")

    s = sub.add_parser("merge", help="merge shard CSVs (files or directories) into results.csv + report")
    s.add_argument("inputs", nargs="+")
    s.add_argument("--out", required=True)

    s = sub.add_parser("report", help="render report.md + plots from a results.csv")
    s.add_argument("csv")
    s.add_argument("--out", default=None)
    return ap


def _meta_path(out: Path) -> Path:
    return out / "meta.json"


def _log_run(out: Path, key: str, systems: tuple, shard: int, n_shards: int, wall_s: float,
             counts: dict) -> list[dict]:
    """Append this invocation to OUT/runs.jsonl (one line per run, appended: shards sharing OUT
    do not race) and return the runs of the same configuration `key` (engine.config_key), whose
    sum is the sweep's time however often it was resumed or split."""
    entry = {"finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "config": key,
             "systems": list(systems), "shard": f"{shard + 1}/{n_shards}", "wall_s": round(wall_s, 1),
             "tasks": counts, "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores"}
    with open(out / "runs.jsonl", "a") as f:
        f.write(json.dumps(entry) + "\n")
    return _runs(out, key)


def _runs(out: Path, key: str | None = None) -> list[dict]:
    f = Path(out) / "runs.jsonl"
    rows = []
    for line in (f.read_text().splitlines() if f.is_file() else []):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if key is None or r.get("config") == key:
            rows.append(r)
    return rows


def cmd_sweep(a, argv) -> int:
    from . import metrics as metrics_mod
    from . import report, runner, speech, systems
    from .deps import missing
    from .speech import default_cache
    need = missing()
    if need:
        print(f"gr-largesc eval needs the [eval] extra; missing: {', '.join(need)}. Install it with "
              "LARGESC_EXTRAS=eval scripts/install_env.sh", file=sys.stderr)
        return 2
    if a.temperature is not None and not (math.isfinite(a.temperature) and 0.0 <= a.temperature <= 10.0):
        print(f"gr-largesc eval: --temperature must be 0..10 (0: greedy), got {a.temperature}", file=sys.stderr)
        return 2
    if a.recovery == "auto":
        from ..core.profiles import AUTO_RECOVERY
        a.recovery = AUTO_RECOVERY.get(a.profile, "moshi")
    pre = PRESETS[a.preset]
    cache_root = Path(a.cache_dir) if a.cache_dir else default_cache()
    cfg = runner.Config(profile=a.profile, recovery=a.recovery, lora=a.lora,
                        systems=a.systems or pre["systems"], loss_models=a.loss_models or pre["loss_models"],
                        ps=a.ps or pre["ps"], bandwidths=a.bandwidths or pre["bandwidths"],
                        metrics=tuple(a.metrics or pre.get("metrics", metrics_mod.METRICS)), seed=a.seed, burst_ms=a.burst_ms, slot_rule=a.slot_rule,
                        cache_dir=None if a.no_cache else str(cache_root), activity=a.activity,
                        temperature=a.temperature, packet_format=a.packet_format)
    from . import losstrace, metrics
    try:
        for name in cfg.systems:
            systems.get(name)
        bad = [m for m in cfg.metrics if m not in metrics.DIRECTION]
        for m in cfg.loss_models:
            try:
                losstrace.parse_model(m, cfg.burst_ms)
            except ValueError:
                bad.append(m)
        if bad:
            raise ValueError(f"unknown metric or loss model: {', '.join(bad)}")
        if any(not 0.0 <= p < 1.0 for p in cfg.ps):
            raise ValueError("loss rates must lie in [0, 1)")
        if any(b < 550.0 for b in cfg.bandwidths):
            raise ValueError("LargeSC budgets must be >= 550 bps")
    except ValueError as exc:
        print(f"gr-largesc eval: {exc}", file=sys.stderr)
        return 2
    out = Path(a.out or f"out/eval/{a.preset}-{a.profile}")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    man = speech.resolve(a.speech or pre["speech"], cache_root)
    utts = speech.load(man, a.utterances or pre["utterances"])
    model = ""
    if any(systems.SYSTEMS[n].kind == "largesc" for n in cfg.systems):
        from . import largesc_system
        try:   # load the models once up front, so a missing file stops the run with its name
            model = largesc_system.model_description(cfg.profile, cfg.recovery, cfg.lora)
            if any(systems.SYSTEMS[n].kind == "largesc" and not systems.SYSTEMS[n].params["recovery"]
                   for n in cfg.systems):
                largesc_system.get_recovery(cfg.recovery, cfg.profile, cfg.lora)
        except Exception as exc:
            print(f"gr-largesc eval: cannot load profile {cfg.profile!r} with recovery {cfg.recovery!r}: "
                  f"{type(exc).__name__}: {exc}" + ("\n(no LM for this profile? try --recovery repeat)"
                                                    if cfg.recovery == "moshi" else ""), file=sys.stderr)
            return 2
    if any(systems.SYSTEMS[x].kind == "opus-dred" for x in cfg.systems):
        from ..core.codec import opus_dnn
        if not opus_dnn.library_path().is_file():
            print(f"gr-largesc eval: system opus-dred needs libopus 1.5.2 ({opus_dnn.library_path()}): build it "
                  f"with scripts/build_opus_dnn.sh {opus_dnn.library_path().parent}", file=sys.stderr)
            return 2
    from . import engine
    i, n = a.shard
    meta = {"command": "gr-largesc eval " + " ".join(shlex.quote(x) for x in argv),
            "profile": cfg.profile, "model": model, "recovery": cfg.recovery, "systems": list(cfg.systems),
            "activity": cfg.activity, "temperature": cfg.temperature, "bandwidths": list(cfg.bandwidths),
            "speech": str(a.speech or pre["speech"]), "metrics": list(cfg.metrics), "seed": cfg.seed,
            "slot_rule": cfg.slot_rule, "loss_models": list(cfg.loss_models), "ps": list(cfg.ps),
            "burst_ms": cfg.burst_ms, "jobs": a.jobs, "scheduler": a.scheduler, "config": engine.config_key(cfg),
            "packet_format": cfg.packet_format, "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "utterances": [{k: u[k] for k in ("id", "text", "source", "licence", "seconds")} for u in utts]}
    # a killed sweep keeps this: `eval merge OUT` then reports the tasks that finished
    (out / "meta.partial.json").write_text(json.dumps(meta, indent=1))
    task_dir = out / ("tasks" if n == 1 else f"tasks.shard-{i + 1}-of-{n}")
    rows, counts = engine.run(cfg, utts, task_dir, scheduler=a.scheduler, jobs=a.jobs, shard=a.shard,
                              progress=not a.no_progress)
    wall = time.perf_counter() - t0
    runs = _log_run(out, engine.config_key(cfg), cfg.systems, i, n, wall, counts)
    meta.update({"tasks": counts, "wall_s": wall, "wall_s_all_runs": sum(r["wall_s"] for r in runs), "runs": runs})
    if i == 0 and not a.no_flowgraph_latency and any(systems.SYSTEMS[x].kind == "largesc" for x in cfg.systems):
        meta["flowgraph_latency"] = flowgraph_latency(cfg)
    if n > 1:
        runner.write_csv(out / f"results.shard-{i + 1}-of-{n}.csv", rows)
        (out / f"meta.shard-{i + 1}-of-{n}.json").write_text(json.dumps(meta, indent=1))
        print(f"shard {i + 1}/{n}: {len(rows)} rows in {wall:.0f} s -> {out}")
        return 0
    runner.write_csv(out / "results.csv", rows)
    _meta_path(out).write_text(json.dumps(meta, indent=1))
    (out / "meta.partial.json").unlink(missing_ok=True)
    rep = report.write_report(rows, out, meta, plots=not a.no_plots)
    print(f"{len(rows)} rows, {wall:.0f} s -> {out / 'results.csv'}, {rep}")
    return 0


def flowgraph_latency(cfg, timeout_s: float = 240.0) -> str:
    """LargeSC's latency table (algorithmic + measured compute per frame) from one run of the
    GNU Radio flowgraph (`gr-largesc run`) on the bundled clip, at the sweep's highest p and
    first B, in a subprocess with a time limit (a block error can leave a flowgraph hanging).
    Returns markdown, or a line saying why it is missing."""
    import subprocess
    import tempfile
    args = ["--profile", cfg.profile, "--recovery", cfg.recovery, "--loss", f"{max(cfg.ps):g}",
            "--bandwidth", f"{cfg.bandwidths[0]:g}", "--seed", str(cfg.seed),
            "--packet-format", getattr(cfg, "packet_format", DEFAULT_FORMAT)]
    shown = "gr-largesc run " + " ".join(args)
    try:
        from ..app import run_summary
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run([sys.executable, "-m", "gnuradio.largesc.app.run_app", *args, "--json",
                                "--out", str(Path(tmp) / "decoded.wav")],
                               capture_output=True, text=True, timeout=timeout_s)
        if r.returncode != 0:
            tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
            return f"(`{shown}` failed with exit code {r.returncode}: {tail})"
        text = run_summary.format_summary(json.loads(r.stdout))
        return f"`{shown}` on the bundled clip:\n\n" + text[text.index("| latency stage"):]
    except subprocess.TimeoutExpired:
        return f"(`{shown}` did not finish within {timeout_s:.0f} s: no flowgraph latency table)"
    except Exception as exc:  # the flowgraph is optional for the sweep
        return f"(`{shown}` failed: {type(exc).__name__}: {exc})"


def cmd_prepare(a) -> int:
    from . import speech
    man = speech.prepare(a.set, Path(a.cache_dir) if a.cache_dir else None, Path(a.out) if a.out else None)
    rows = json.loads(man.read_text())
    for r in rows:
        print(f"{r['id']:40s} {r['seconds']:6.2f} s  {r['licence']}")
    print(f"{len(rows)} utterances, {sum(r['seconds'] for r in rows):.1f} s -> {man}")
    return 0


def cmd_merge(a) -> int:
    from . import report, runner
    files, metas = [], []
    for x in a.inputs:
        p = Path(x)
        if p.is_dir():
            files += sorted(p.glob("results.shard-*.csv"))
            metas += sorted(p.glob("meta.shard-*.json"))
        else:
            files.append(p)
    rows, partial = [], None
    if not files:       # a killed (or still running) sweep: the rows of the tasks that finished
        for x in a.inputs:
            p = Path(x)
            done = sorted(p.glob("tasks*/*/*.json")) if p.is_dir() else []
            if done and (p / "meta.partial.json").is_file():
                pm = json.loads((p / "meta.partial.json").read_text())
                for f in done:
                    rows += json.loads(f.read_text())
                partial = {"meta": pm, "done": len(done),
                           "of": len(pm.get("systems", [])) * len(pm.get("utterances", []))}
        if partial is None:
            print("merge: no shard CSVs, and no task files with a meta.partial.json", file=sys.stderr)
            return 2
    for f in files:
        rows += runner.read_csv(f)
    seen, uniq = set(), []
    for r in runner.sort_rows(rows):
        k = tuple(r[c] for c in runner.COLUMNS if c != "value")
        if k not in seen:
            seen.add(k)
            uniq.append(r)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    runner.write_csv(out / "results.csv", uniq)
    meta = json.loads(metas[0].read_text()) if metas else {"profile": next((r["profile"] for r in uniq if r["profile"]), "?")}
    if partial:
        meta = dict(partial["meta"], partial=f"{partial['done']} of {partial['of']} (utterance, system) tasks "
                    "finished; the sweep was stopped before the rest")
    if metas:
        meta["wall_s"] = sum(json.loads(m.read_text()).get("wall_s", 0.0) for m in metas)
        meta["machine"] = f"sum over {len(metas)} shards"
    keys = {json.loads(m.read_text()).get("config") for m in metas} - {None}
    runs = [r for x in dict.fromkeys(Path(x) if Path(x).is_dir() else Path(x).parent for x in a.inputs)
            for r in _runs(x) if not keys or r.get("config") in keys]
    if runs:     # every run of the shards (resumed ones included): their sum is the sweep's time
        meta["runs"] = runs
        meta["wall_s_all_runs"] = sum(r["wall_s"] for r in runs)
        meta.setdefault("wall_s", meta["wall_s_all_runs"])
    _meta_path(out).write_text(json.dumps(meta, indent=1))
    rep = report.write_report(uniq, out, meta)
    print(f"merged {len(files)} files, {len(uniq)} rows -> {out / 'results.csv'}, {rep}")
    return 0


def cmd_report(a) -> int:
    from . import report, runner
    csv = Path(a.csv)
    out = Path(a.out) if a.out else csv.parent
    meta_p = csv.parent / "meta.json"
    rows = runner.read_csv(csv)
    meta = json.loads(meta_p.read_text()) if meta_p.is_file() else {}
    print(report.write_report(rows, out, meta))
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["sweep"] + argv
    try:
        ap = build_parser()
    except ImportError as exc:     # pragma: no cover - the extra is missing
        print(f"gr-largesc eval needs the [eval] extra: {exc}. Install it with "
              "LARGESC_EXTRAS=eval scripts/install_env.sh", file=sys.stderr)
        return 2
    a = ap.parse_args(argv)
    if a.cmd == "sweep":
        return cmd_sweep(a, argv)
    if a.cmd == "prepare":
        return cmd_prepare(a)
    if a.cmd == "merge":
        return cmd_merge(a)
    if a.cmd == "report":
        return cmd_report(a)
    ap.print_help()
    return 2
