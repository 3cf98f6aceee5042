"""train-lm (docs/models/mini.md): the mini LM trains, checkpoints, resumes, exports, and loads as profile-style
weights that moshi recovery streams with (n_q = dep_q = 8, no user stream)."""
import json
import os

import numpy as np
import pytest

os.environ.setdefault("NO_TORCH_COMPILE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("moshi")

from gnuradio.largesc.core.link import frames  # noqa: E402
from gnuradio.largesc.core.recovery import lm as lm_mod
from gnuradio.largesc.core.recovery import recover  # noqa: E402
from gnuradio.largesc.core.recovery.moshi import MoshiRecovery  # noqa: E402
from gnuradio.largesc.training import train_lm

SMALL = ["--dim", "32", "--layers", "1", "--dep-dim", "32", "--frames", "12", "--batch", "2",
         "--warmup", "2", "--valid-every", "3"]


def _tokens(folder, n=6, frames_per_file=40, seed=0):
    """A learnable token source: every file cycles through the same 4 frames, from its own phase."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    base = rng.integers(0, 2048, (8, 4))
    for i in range(n):
        a = np.roll(np.tile(base, (1, frames_per_file // 4)), i, axis=1)
        np.save(folder / f"clip{i}_{'valid' if i == n - 1 else 'train'}.npy", a.astype(np.int16))
    return folder


def test_train_resume_export_and_recover(tmp_path):
    tok = _tokens(tmp_path / "tok")
    out = tmp_path / "run"
    assert train_lm.main(["--tokens", str(tok), "--out", str(out), "--max-steps", "3", *SMALL]) == 0
    state = json.loads((out / "state.json").read_text())
    assert state["step"] == 3 and len(state["history"]) == 1
    first = state["history"][0]["valid"]
    # resume: continues from step 3, not from 0
    assert train_lm.main(["--tokens", str(tok), "--out", str(out), "--max-steps", "30", "--lr", "3e-3", *SMALL]) == 0
    state = json.loads((out / "state.json").read_text())
    assert state["step"] == 30
    assert state["history"][-1]["valid"] < first           # it learned the repeating patterns
    assert state["best"]["valid"] == min(h["valid"] for h in state["history"])   # kept for export
    assert (out / "best.safetensors").exists()
    exp = tmp_path / "export"
    assert train_lm.main(["--out", str(out), "--export", str(exp), *SMALL]) == 0
    assert (exp / "model.safetensors").stat().st_size < 20e6
    lm = lm_mod.load_lm("mini-v1", weights=exp / "model.safetensors", config=exp / "config.json")
    assert lm.n_q == lm.dep_q == 8
    rng = np.random.default_rng(1)
    toks = rng.integers(0, 2048, (8, 20))
    states = np.full((8, 20), frames.STATE_ORIGINAL, np.uint8)
    states[:, 5:8] = frames.STATE_LOST
    rec = MoshiRecovery(lm, seed=0)
    out_t, out_s = recover(rec, toks, states)
    np.testing.assert_array_equal(out_t[:, :5], toks[:, :5])
    assert (out_s[:, 5:8] == frames.STATE_GENERATED).all()


def test_missing_mini_lm_weights_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(lm_mod, "MINI_LM_DIR", tmp_path)
    with pytest.raises(lm_mod.ModelFileError, match=str(tmp_path)):
        lm_mod.load_lm("mini-v1")


def test_shipped_mini_lm_predicts_codebook_0_of_unseen_speech():
    """The shipped LM (base and with its LoRA) on the bundled clip, which no training saw:
    codebook 0 well below the uniform 7.62 nats (measured 6.16 / 6.14), random tokens above it."""
    from gnuradio.largesc.app.cli import BUNDLED_CLIP
    from gnuradio.largesc.core import audio_io, codec
    x, rate = audio_io.read_wav(BUNDLED_CLIP)
    codes = codec.load_codec("mini-v1").encode(audio_io.to_codec_rate(x, rate))
    noise = np.random.default_rng(0).integers(0, 2048, codes.shape)
    for lora in ("none", None):
        lm = lm_mod.load_lm("mini-v1", lora=lora)
        with torch.no_grad():
            _, (cb0, _) = train_lm.lm_loss(lm, torch.as_tensor(codes[None]), 1.0)
            _, (cb0_noise, _) = train_lm.lm_loss(lm, torch.as_tensor(noise[None]), 1.0)
        assert cb0 < 6.9 < np.log(2048) < cb0_noise, (lora, cb0, cb0_noise)
