"""LoRA fine-tuning: corruption recipe, train-as-you-infer forward, learning, resume, loading."""
import json

import numpy as np
import pytest
import torch

from gnuradio.largesc.core import recovery as R
from gnuradio.largesc.core.link import frames
from gnuradio.largesc.core.recovery import lm as L
from gnuradio.largesc.core.recovery.moshi import MoshiRecovery
from gnuradio.largesc.training import token_data as D
from gnuradio.largesc.training import train_lora as T

O, C, LOST, N = frames.STATE_ORIGINAL, frames.STATE_COPY, frames.STATE_LOST, frames.STATE_NOT_SENT


def test_corruption_recipe():
    rng = np.random.default_rng(0)
    runs = [D.corrupt(60, rng) for _ in range(400)]
    lost_rates, bursty = [], 0
    for st in runs:
        assert set(np.unique(st)) <= {O, C, LOST, N}
        for t in range(st.shape[1]):
            col = st[:, t]
            sent = np.flatnonzero(col != N)
            assert len(sent) >= 1 and (sent == np.arange(len(sent))).all()     # N: a prefix is sent
            copies = np.flatnonzero(col == C)
            if len(copies):                                                     # copies: lowest codebooks
                assert (copies == np.arange(len(copies))).all() and len(copies) <= 3
                assert (col[len(copies):] != O).all()
        frame_lost = (st[0] != O)
        lost_rates.append(frame_lost.mean())
        bursty += np.any(frame_lost[:-2] & frame_lost[1:-1] & frame_lost[2:])
    assert 0.18 < np.mean(lost_rates) < 0.32            # p ~ U(0, 0.5): mean 0.25
    assert np.max(lost_rates) > 0.4 and np.min(lost_rates) < 0.05
    assert any((st == N).any() for st in runs) and any((st == C).any() for st in runs)
    assert bursty > 50


def test_markov_source_has_structure():
    src = D.MarkovTokenSource(seed=0)
    x = src.sample(2000, np.random.default_rng(1))
    assert x.shape == (8, 2000) and ((x >= 0) & (x < 2048)).all()
    nxt = {}                                             # codebook k is a function of codebook k-1
    for a, b in zip(x[2], x[3]):
        nxt.setdefault(a, []).append(b)
    agree = np.mean([np.mean(np.array(v) == max(set(v), key=v.count)) for v in nxt.values()])
    assert agree > 0.9
    assert np.mean(x[0, 1:] == x[0, :-1]) < 0.35        # so repeat is a weak predictor


def test_recovery_forward_is_lmmodel_forward_on_clean_input():
    lm = L.load_lm("tiny")
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 2048, (2, 17, 7), generator=g)
    codes[:, 0] = 3
    codes[:, 9:] = -1
    with torch.no_grad():
        ref = lm(codes)
        logits, valid = T.recovery_forward(lm, codes, codes)
    assert torch.equal(valid, ref.mask)
    torch.testing.assert_close(logits[valid], ref.logits[ref.mask])


def test_only_lora_parameters_learn():
    from peft import LoraConfig, get_peft_model
    lm = L.load_lm("tiny")
    lm.train()
    peft = get_peft_model(lm, LoraConfig(r=4, lora_alpha=8, target_modules=T.TARGETS["main"]))
    obj = T.RecoveryObjective(peft.get_base_model())
    clean, states = T.batch_tensors(D.MarkovTokenSource(), 2, 12, np.random.default_rng(0), "cpu")
    obj(clean, states).backward()
    grads = {n for n, p in peft.named_parameters() if p.grad is not None}
    assert grads and all("lora_" in n for n in grads)
    assert all(n.startswith("base_model.model.transformer.") for n in grads)
    assert not any(p.requires_grad for n, p in peft.named_parameters() if "lora_" not in n)


def test_resume_from_checkpoint(tmp_path):
    common = ["--profile", "tiny", "--out", str(tmp_path), "--batch", "2", "--frames", "12", "--eval-batches", "1",
              "--no-progress", "--save-every", "2"]
    assert T.main(common + ["--steps", "4"]) == 0
    assert (tmp_path / "checkpoint_000004" / "optimizer.safetensors").is_file()
    summary = T.train(T.build_parser().parse_args(common + ["--steps", "6", "--resume"]))
    assert summary["start_step"] == 4 and summary["steps"] == 6
    state = json.loads((tmp_path / "checkpoint_000006" / "trainer_state.json").read_text())
    assert state["step"] == 6


def _accuracy(lm, seeds, strategy, **kw):
    src = D.MarkovTokenSource(seed=0)
    accs = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        clean = src.sample(100, rng)
        states = D.erasure_states(100, 0.3, rng)
        unknown = ~np.isin(states, frames.KNOWN_STATES)
        rec = MoshiRecovery(lm, **kw) if strategy == "moshi" else R.build(strategy)
        out, _ = R.recover(rec, np.where(unknown, 0, clean), states)
        accs.append(R.token_accuracy(clean, out, unknown))
    return float(np.mean(accs))


def _learns_and_beats_repeat(tmp_path, steps, batch, num_frames, min_margin):
    torch.set_num_threads(1)
    T.main(["--profile", "tiny", "--out", str(tmp_path), "--steps", str(steps), "--batch", str(batch), "--frames", str(num_frames),
            "--eval-batches", "2", "--eval-every", "0", "--no-progress"])
    summary = json.loads((tmp_path / "train_summary.json").read_text())
    print(f"\nheld-out loss {summary['heldout_loss_start']:.3f} -> {summary['heldout_loss_end']:.3f}")
    assert summary["heldout_loss_end"] < 0.5 * summary["heldout_loss_start"]
    lm = L.load_lm("tiny", lora=tmp_path)                         # peft format
    lm_moshi = L.load_lm("tiny", lora=tmp_path / "moshi")         # moshi format: the same weights
    sd, sm = lm.state_dict(), lm_moshi.state_dict()
    assert all(torch.allclose(sd[k], sm[k], atol=1e-5) for k in sd)
    seeds = [101, 102]
    repeat = _accuracy(lm, seeds, "repeat")
    greedy = _accuracy(lm, seeds, "moshi", temperature=0.0)
    sampled = _accuracy(lm, seeds, "moshi", temperature=0.8, top_k=50, seed=0)
    base = _accuracy(L.load_lm("tiny"), seeds, "moshi", temperature=0.0)
    print(f"token accuracy on lost tokens at p=0.3: repeat {repeat:.3f}, untrained moshi {base:.3f}, "
          f"moshi greedy {greedy:.3f} (margin {greedy - repeat:+.3f}), "
          f"moshi T=0.8 top-50 {sampled:.3f} (margin {sampled - repeat:+.3f})")
    assert greedy - repeat > min_margin
    assert sampled > repeat
    assert greedy > base + min_margin
    return tmp_path


def test_learns_and_moshi_beats_repeat(tmp_path):
    out = _learns_and_beats_repeat(tmp_path, steps=120, batch=4, num_frames=32, min_margin=0.15)
    from gnuradio.largesc import token_recovery
    blk = token_recovery(strategy="moshi", profile="tiny", lora=str(out))   # the block loads it
    assert blk.get_stats()["strategy"] == "moshi"


@pytest.mark.full
def test_learns_and_moshi_beats_repeat_full(tmp_path):
    _learns_and_beats_repeat(tmp_path, steps=400, batch=8, num_frames=48, min_margin=0.3)


def test_audio_folder_and_manifest_are_encoded_and_cached(tmp_path):
    import sphn
    audio = tmp_path / "audio"
    audio.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        sphn.write_wav(str(audio / f"u{i}.wav"), (0.1 * rng.standard_normal((1, 36000))).astype(np.float32), 24000)
    (tmp_path / "m.jsonl").write_text("".join(
        json.dumps({"path": f"audio/u{i}.wav", "duration": 1.5, "split": "heldout" if i == 2 else "train"}) + "\n"
        for i in range(3)))
    assert D.audio_files(tmp_path / "m.jsonl") == sorted(audio.glob("*.wav"))[:2]
    out = tmp_path / "out"
    T.main(["--profile", "tiny", "--data", str(tmp_path / "m.jsonl"), "--codec-profile", "tiny", "--out", str(out), "--steps", "2",
            "--batch", "2", "--frames", "12", "--eval-batches", "1", "--no-progress"])
    cached = sorted((out / "tokens").glob("*.npy"))
    assert len(cached) == 2
    codes = np.load(cached[0])
    assert codes.shape == (8, 19) and codes.dtype == np.int16 and (codes >= 0).all()
    assert (out / "moshi" / "lora.safetensors").is_file()
    mtime = cached[0].stat().st_mtime_ns                 # cached files are not encoded again
    T.main(["--profile", "tiny", "--data", str(tmp_path / "m.jsonl"), "--codec-profile", "tiny", "--out", str(out), "--steps", "1",
            "--batch", "2", "--frames", "12", "--eval-batches", "1", "--no-progress"])
    assert cached[0].stat().st_mtime_ns == mtime
    with pytest.raises(FileNotFoundError, match="nowhere"):
        D.audio_files(tmp_path / "nowhere")
