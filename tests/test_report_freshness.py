"""Committed reports name the model they measured: for a profile trained here, the sha256 in a
report's meta must be that of the weights main ships for that profile, so a report left stale
by a retrained codec fails here instead of being read as current."""
import hashlib
import json
import re
from pathlib import Path

import pytest

from gnuradio.largesc.core.profiles import MINI_FAMILY, models_dir

REPO = Path(__file__).resolve().parents[1]
REPORTS = sorted((REPO / "docs" / "eval").glob("*/meta.json")) + sorted((REPO / "docs" / "recovery").glob("*/meta.json"))


def shipped_sha(profile: str) -> str:
    return hashlib.sha256((models_dir() / profile / "codec" / "model.safetensors").read_bytes()).hexdigest()


@pytest.mark.parametrize("meta", REPORTS, ids=lambda p: p.parent.name)
def test_eval_report_names_the_shipped_codec(meta):
    m = json.loads(meta.read_text())
    if m.get("profile") not in MINI_FAMILY:
        return                                       # random-weight profiles: nothing to go stale
    found = re.search(r"sha256 ([0-9a-f]{12,64})", m.get("model", ""))
    assert found, f"{meta}: no model sha256 in its meta"
    assert shipped_sha(m["profile"]).startswith(found.group(1)), (
        f"{meta.parent.name}: made with another {m['profile']} codec than main ships; rerun it")


def test_codec_evaluation_names_the_shipped_codec():
    s = json.loads((REPO / "docs" / "models" / "mini-v2-eval" / "summary.json").read_text())
    assert s["meta"]["v2_sha"] == shipped_sha("mini")


@pytest.mark.parametrize("meta", REPORTS, ids=lambda p: p.parent.name)
def test_eval_report_names_the_shipped_latent_predictor(meta):
    """A report made with the `latent` strategy names the predictor's sha256, which must be the
    shipped one's (a retrained predictor makes it stale)."""
    m = json.loads(meta.read_text())
    if "latent" not in [m.get("recovery"), *m.get("strategies", [])]:
        return
    found = re.search(r"latent predictor .*?sha256 ([0-9a-f]{12,64})", m.get("model", ""))
    assert found, f"{meta}: no latent predictor sha256 in its meta"
    w = models_dir() / m["profile"] / "recovery" / "latent" / "model.safetensors"
    assert hashlib.sha256(w.read_bytes()).hexdigest().startswith(found.group(1)), (
        f"{meta.parent.name}: made with another latent predictor than main ships; rerun it")


@pytest.mark.parametrize("meta", REPORTS, ids=lambda p: p.parent.name)
def test_eval_report_names_the_shipped_lm_and_lora(meta):
    """A report made with the `moshi` strategies names the recovery LM's sha256 (and the LoRA
    adapter's, when it used the shipped one), which must be those main ships."""
    m = json.loads(meta.read_text())
    if not {"moshi", "moshi-mmse"} & {m.get("recovery"), *m.get("strategies", [])} or m.get("profile") not in MINI_FAMILY:
        return
    from gnuradio.largesc.core.recovery.lm import MINI_LM_DIR, MINI_LORA_DIR, PEFT_ADAPTER_FILE
    desc = m.get("model", "")
    found = re.search(r"LM sha256 ([0-9a-f]{12,64})", desc)
    assert found, f"{meta}: no recovery LM sha256 in its meta; rerun it"
    assert hashlib.sha256((MINI_LM_DIR / "model.safetensors").read_bytes()).hexdigest().startswith(found.group(1))
    if "shipped LoRA" in desc:
        found = re.search(r"LoRA sha256 ([0-9a-f]{12,64})", desc)
        assert found, f"{meta}: no LoRA sha256 in its meta; rerun it"
        ad = MINI_LORA_DIR / PEFT_ADAPTER_FILE
        assert hashlib.sha256(ad.read_bytes()).hexdigest().startswith(found.group(1))


def test_every_report_folder_has_its_meta():
    """Each committed report folder carries the meta.json these checks read (an unchecked report
    could go stale silently)."""
    bare = [d.name for d in (REPO / "docs" / "eval").iterdir()
            if d.is_dir() and any((d / f).is_file() for f in ("report.md", "summary.md"))
            and not (d / "meta.json").is_file()]
    assert not bare, f"reports without meta.json: {bare}"
