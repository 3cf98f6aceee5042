"""The sweep engine (evaluation/engine.py): tasks on a 2-worker dask LocalCluster give the rows the
in-process run gives, and a sweep killed half way resumes without redoing finished tasks."""
import pytest

from gnuradio.largesc.evaluation import engine, runner, speech
from gnuradio.largesc.evaluation.deps import missing

pytestmark = pytest.mark.skipif(bool(missing()), reason="eval extra not installed (LARGESC_EXTRAS=eval)")


def small():
    cfg = runner.Config(profile="tiny", recovery="repeat", systems=("largesc-repeat", "codec2-1300", "reference"),
                        ps=(0.0, 0.3), metrics=("stoi",), seed=1, cache_dir=None)
    utts = speech.load(speech.prepare("test"))
    return cfg, utts


def test_local_cluster_gives_the_in_process_rows(tmp_path):
    cfg, utts = small()
    cfg.cache_dir = str(tmp_path / "cache")
    rows_dask, c1 = engine.run(cfg, utts, tmp_path / "dask", scheduler="local", jobs=2, progress=False)
    cfg.cache_dir = str(tmp_path / "cache2")              # a fresh cache: computed again, in this process
    rows_here, c2 = engine.run(cfg, utts, tmp_path / "here", scheduler="none", progress=False)
    n_tasks = len(utts) * len(cfg.systems)
    assert c1 == c2 == {"run": n_tasks, "skipped": 0}
    assert len(list((tmp_path / "dask").rglob("*.json"))) == n_tasks
    key = lambda r: (r["utterance"], r["system"], r["loss_model"], r["p"], r["metric"])  # noqa: E731
    assert [key(r) for r in rows_dask] == [key(r) for r in rows_here]
    assert [r["value"] for r in rows_dask] == pytest.approx([r["value"] for r in rows_here], abs=1e-9)


def test_killed_sweep_resumes_without_redoing_finished_tasks(tmp_path, monkeypatch):
    cfg, utts = small()
    cfg.cache_dir = str(tmp_path / "cache")
    real = runner.run_task
    calls = []

    def dies_on_the_fourth(c, u, s):
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        calls.append((u["id"], s))
        return real(c, u, s)
    monkeypatch.setattr(runner, "run_task", dies_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        engine.run(cfg, utts, tmp_path / "t", scheduler="none", progress=False)
    assert len(list((tmp_path / "t").rglob("*.json"))) == 3 and not list((tmp_path / "t").rglob("*.tmp"))
    done_first = list(calls)
    calls.clear()
    monkeypatch.setattr(runner, "run_task", lambda c, u, s: calls.append((u["id"], s)) or real(c, u, s))
    rows, counts = engine.run(cfg, utts, tmp_path / "t", scheduler="none", progress=False)
    n_tasks = len(utts) * len(cfg.systems)
    assert counts == {"run": n_tasks - 3, "skipped": 3}
    assert not set(calls) & set(done_first) and len(calls) == n_tasks - 3
    clean, _ = engine.run(cfg, utts, tmp_path / "clean", scheduler="none", progress=False)
    assert rows == clean


def test_another_configuration_is_not_taken_for_done(tmp_path):
    cfg, utts = small()
    cfg.cache_dir = str(tmp_path / "cache")
    cfg.systems = ("reference",)
    _, c1 = engine.run(cfg, utts, tmp_path / "t", scheduler="none", progress=False)
    cfg.ps, cfg.seed = (0.0, 0.3), 2
    rows, c2 = engine.run(cfg, utts, tmp_path / "t", scheduler="none", progress=False)
    assert c1["run"] == c2["run"] == len(utts) and c2["skipped"] == 0
    assert {r["seed"] for r in rows} == {2}


def test_a_system_added_to_a_finished_sweep_runs_alone(tmp_path):
    """The standard report added `opus-dred` to a finished sweep: only its tasks ran."""
    cfg, utts = small()
    cfg.cache_dir = str(tmp_path / "cache")
    cfg.systems = ("codec2-1300", "reference")
    first, c1 = engine.run(cfg, utts, tmp_path / "t", scheduler="none", progress=False)
    cfg.systems = ("codec2-1300", "opus", "reference")
    rows, c2 = engine.run(cfg, utts, tmp_path / "t", scheduler="none", progress=False)
    assert c1 == {"run": 2 * len(utts), "skipped": 0}
    assert c2 == {"run": len(utts), "skipped": 2 * len(utts)}
    assert [r for r in rows if r["system"] != "opus"] == first


def test_a_system_with_changed_parameters_is_not_taken_for_done(tmp_path, monkeypatch):
    import dataclasses

    from gnuradio.largesc.evaluation import systems
    cfg, utts = small()
    cfg.cache_dir = str(tmp_path / "cache")
    cfg.systems = ("opus",)
    _, c1 = engine.run(cfg, utts, tmp_path / "t", scheduler="none", progress=False)
    faster = dataclasses.replace(systems.SYSTEMS["opus"], params={"bitrate": 9000, "fec": True})
    monkeypatch.setitem(systems.SYSTEMS, "opus", faster)
    rows, c2 = engine.run(cfg, utts, tmp_path / "t", scheduler="none", progress=False)
    assert c1 == c2 == {"run": len(utts), "skipped": 0}
    assert min(r["payload_bps"] for r in rows) > 7000
