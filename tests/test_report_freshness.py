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
REPORTS = sorted((REPO / "docs" / "eval").glob("*/meta.json"))


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
    if m.get("recovery") != "latent":
        return
    found = re.search(r"latent predictor .*?sha256 ([0-9a-f]{12,64})", m.get("model", ""))
    assert found, f"{meta}: no latent predictor sha256 in its meta"
    w = models_dir() / m["profile"] / "recovery" / "latent" / "model.safetensors"
    assert hashlib.sha256(w.read_bytes()).hexdigest().startswith(found.group(1)), (
        f"{meta.parent.name}: made with another latent predictor than main ships; rerun it")
