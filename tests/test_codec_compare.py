"""eval-codec (evaluation/codec_compare.py): the paired summary and the clip selection."""
import json

from gnuradio.largesc.evaluation import codec_compare


def rows():
    out = []
    for i in range(12):
        clip = f"c{i}"
        group = "en" if i < 6 else "game"
        for system, stoi, err in (("a", 0.80 + 0.01 * i, 1), ("b", 0.75 + 0.01 * i, 3)):
            r = {"clip": clip, "group": group, "system": system, "stoi": stoi, "pesq_wb": 1.5, "visqol": 2.0}
            if group == "en":
                r.update(errors=err, words=10)
            out.append(r)
    return out


def test_paired_differences_and_wer_ratio():
    s = codec_compare.summarise(rows(), [("a", "b")])
    assert s["clips"] == {"all": 12, "en": 6, "game": 6, "fr": 0}
    assert s["systems"]["a"]["wer"][0] == 10.0 and s["systems"]["b"]["wer"][0] == 30.0
    d = s["paired"]["a - b"]
    assert abs(d["stoi"][0] - 0.05) < 1e-9 and d["stoi"][1] <= 0.05 <= d["stoi"][2]
    assert d["wer"][0] == -20.0                         # summed errors over summed words, in points
    md = codec_compare.report(s, {"command": "x", "wall_s": 1.0, "resumed": 0, "v2": "w", "v2_sha": "0" * 64})
    assert "| a - b | -20.0" in md and md.startswith("# Codec comparison on unseen speakers (12 clips")
    json.dumps(s)                                       # the summary is JSON as written


def test_missing_packages_are_named(monkeypatch, capsys):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda m: None if m == "pesq" else real(m))
    assert codec_compare.main(["--out", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and "pesq" in err and "requirements-eval.txt" in err
