"""The sweep engine: (utterance, system) tasks on dask.distributed, each task's rows in its own
file so a killed sweep resumes where it stopped.

`scheduler`: "local" starts a `LocalCluster` of `jobs` single-threaded worker processes on this
machine; any other value is the address of a running scheduler (`tcp://host:8786`), e.g. one
that `dask-jobqueue` started on a SLURM cluster (docs/eval/README.md has the recipe); "none" runs
the tasks in this process (no dask). The content-hash cache of decodes and scores
(runner.Cache) works the same in every worker.

Task files: `<task_dir>/<config hash>/<utterance>__<system>__<system parameters hash>.json`,
written atomically when the task is done; a task whose file exists under the same configuration
is not run again (another p, B, seed, recovery, ... is another folder; a system whose parameters
changed, e.g. a baseline's bit rate, another file). The system list is not part of the
configuration: a system added to a finished sweep runs alone. Workers write them, so with a remote scheduler
`--out` must be on a file system the workers share.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from . import runner

SCHEDULERS = ("local", "none")


def task_file(task_dir: Path, utt_id: str, system: str) -> Path:
    from . import systems
    h = runner._h(systems.get(system).key())[:8]
    return Path(task_dir) / (re.sub(r"[^A-Za-z0-9_.-]", "_", f"{utt_id}__{system}__{h}") + ".json")


def _save(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows))
    os.replace(tmp, path)


def _run_one(cfg_dict: dict, utt: dict, system: str, path: str) -> int:
    """Worker side: one task -> its file; returns the number of rows."""
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(v, "1")
    rows = runner.run_task(runner.Config(**cfg_dict), utt, system)
    _save(Path(path), rows)
    return len(rows)


def config_key(cfg: runner.Config) -> str:
    """The configuration's hash (its task folder). A task's rows depend on the configuration,
    not on which other systems the sweep holds: adding a system to a finished sweep runs that
    system's tasks only."""
    d = {k: getattr(cfg, k) for k in cfg.__dataclass_fields__ if k not in ("cache_dir", "systems")}
    return runner._h(runner.CODE_VERSION, d)[:16]


def run(cfg: runner.Config, utts: list[dict], task_dir: Path, scheduler: str = "local", jobs: int = 1,
        shard: tuple[int, int] = (0, 1), progress: bool = True) -> tuple[list[dict], dict]:
    """Run the sweep's tasks not yet done; returns (every task's rows, {"run", "skipped"})."""
    cfg_dict = {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}
    task_dir = Path(task_dir).resolve() / config_key(cfg)
    task_dir.mkdir(parents=True, exist_ok=True)
    for u in utts:
        u.setdefault("hash", runner.audio_hash(u["audio"]))
    todo_all = runner.tasks_for(cfg, len(utts), shard)
    paths = {t: task_file(task_dir, utts[t[0]]["id"], t[1]) for t in todo_all}
    todo = [t for t in todo_all if not paths[t].is_file()]
    if todo and scheduler == "none":
        for ui, name in todo:
            _run_one(cfg_dict, utts[ui], name, str(paths[(ui, name)]))
    elif todo:
        _run_dask(cfg_dict, utts, todo, paths, scheduler, jobs, progress)
    rows = []
    for t in todo_all:
        rows += json.loads(paths[t].read_text())
    return runner.sort_rows(rows), {"run": len(todo), "skipped": len(todo_all) - len(todo)}


def _run_dask(cfg_dict, utts, todo, paths, scheduler: str, jobs: int, progress: bool) -> None:
    from dask.distributed import Client, LocalCluster, as_completed
    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=max(1, jobs), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futs = [client.submit(_run_one, cfg_dict, utts[ui], name, str(paths[(ui, name)]),
                              key=f"largesc-eval-{paths[(ui, name)].stem}", pure=False)
                for ui, name in todo]
        done = 0
        for f in as_completed(futs):
            f.result()                               # a failed task raises here, with its traceback
            done += 1
            if progress:
                print(f"[eval] {done}/{len(futs)} tasks", flush=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
