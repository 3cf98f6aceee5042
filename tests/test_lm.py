"""LM profiles, file errors, and LoRA adapters in moshi's and peft's formats."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from gnuradio.largesc.core import recovery as R
from gnuradio.largesc.core.codec import ModelFileError
from gnuradio.largesc.core.recovery import lm as L
from gnuradio.largesc.core.recovery.moshi import MoshiRecovery


@pytest.fixture(scope="module")
def codes():
    g = torch.Generator().manual_seed(0)
    c = torch.randint(0, 2048, (1, 17, 6), generator=g)
    c[:, 0] = 3
    c[:, 9:] = -1
    return c


def logits(lm, codes):
    with torch.no_grad():
        return lm(codes).logits.nan_to_num()


def test_tiny_profile_layout_and_seed():
    kw = L.lm_kwargs("tiny")
    assert (kw["n_q"], kw["dep_q"], kw["card"]) == (16, 8, 2048)
    assert kw["delays"] == [0, 0] + [1] * 7 + [0] + [1] * 7
    a, b, c = L.load_lm("tiny"), L.load_lm("tiny"), L.load_lm("tiny", seed=1)
    assert not a.training and a.dtype == torch.float32
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert L.lm_kwargs("kyutai-arch")["dim"] == 4096


def test_unknown_profile():
    with pytest.raises(ValueError, match="unknown LM profile"):
        L.load_lm("huge")


def test_missing_files_are_named(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(ModelFileError, match="nope.safetensors"):
        L.load_lm("kyutai", weights=missing)
    pickle = tmp_path / "model.pt"
    pickle.write_bytes(b"x")
    with pytest.raises(ModelFileError, match="only safetensors"):
        L.load_lm("tiny", weights=pickle)
    with pytest.raises(ModelFileError, match="config.json"):
        L.load_lm("tiny", config=tmp_path / "config.json")
    with pytest.raises(ModelFileError, match="lora.bin"):
        L.load_lm("tiny", lora=tmp_path / "lora.bin")


def test_local_weights_and_config_load_as_kyutai(tmp_path, codes):
    ref = L.load_lm("tiny", seed=3)
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({**L.tiny_lm_kwargs(), "model_type": "moshi"}))
    lm = L.load_lm("kyutai", weights=tmp_path / "model.safetensors", config=tmp_path / "config.json",
                   dtype=torch.float32)
    torch.testing.assert_close(logits(lm, codes), logits(ref, codes))
    (tmp_path / "config.json").write_text(json.dumps({**L.tiny_lm_kwargs(), "dim": 32}))
    with pytest.raises(ModelFileError, match="model.safetensors"):
        L.load_lm("kyutai", weights=tmp_path / "model.safetensors", config=tmp_path / "config.json")


def test_kyutai_offline_names_the_file():
    # HF_HUB_OFFLINE=1 (test command): the hub is not asked; the error says what to download.
    with pytest.raises(ModelFileError, match=L.KYUTAI_LM_FILE):
        L.load_lm("kyutai")


def test_full_size_refuses_cpu_unless_forced():
    with pytest.raises(RuntimeError, match="27x slower"):
        L.check_realtime("kyutai", "cpu")
    L.check_realtime("kyutai", "cpu", force=True)
    L.check_realtime("tiny", "cpu")
    with pytest.raises(RuntimeError, match="refusing"):
        R.build("moshi", profile="kyutai", device="cpu")


def test_meta_materialisation_in_bf16(codes):
    lm = L.materialise_random_lm(L.tiny_lm_kwargs(), dtype=torch.bfloat16)
    assert lm.dtype == torch.bfloat16
    assert not any(p.is_meta for p in lm.parameters())
    assert torch.isfinite(logits(lm, codes)).all()


def _moshi_adapter(folder, rank=4, seed=0):
    """A moshi-format adapter on the tiny LM (moshi's own LoRALinear) + the reference model."""
    from moshi.modules.lora import replace_all_linear_with_lora, replace_lora_with_linear
    ref = L.load_lm("tiny")
    replace_all_linear_with_lora(ref, rank, 2.0)
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, p in ref.named_parameters():
        if "lora_" in name:
            p.data = torch.randn(p.shape, generator=g) * 0.05
            state[name] = p.data.clone()
    folder.mkdir()
    save_file(state, str(folder / L.MOSHI_ADAPTER_FILE))
    (folder / "config.json").write_text(json.dumps({**L.tiny_lm_kwargs(), "lora": True, "lora_rank": rank,
                                                    "lora_scaling": 2.0}))
    unfused = ref
    replace_lora_with_linear(ref)
    return unfused


def test_moshi_format_adapter_matches_moshi_fusion(tmp_path, codes):
    ref = _moshi_adapter(tmp_path / "moshi")
    for path in (tmp_path / "moshi", tmp_path / "moshi" / L.MOSHI_ADAPTER_FILE):
        lm = L.load_lm("tiny", lora=path)
        torch.testing.assert_close(logits(lm, codes), logits(ref, codes), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(logits(L.load_lm("tiny"), codes), logits(ref, codes))


def test_peft_format_adapter_matches_merge_and_unload(tmp_path, codes):
    from peft import LoraConfig, get_peft_model
    lm = L.load_lm("tiny")
    targets = r"transformer\.layers\.\d+\.gating\.linear_(in|out)"
    peft = get_peft_model(lm, LoraConfig(r=4, lora_alpha=8, target_modules=targets))
    g = torch.Generator().manual_seed(1)
    for name, p in peft.named_parameters():
        if "lora_B" in name:
            p.data = torch.randn(p.shape, generator=g) * 0.05
    peft.save_pretrained(str(tmp_path / "peft"), safe_serialization=True)
    merged = peft.merge_and_unload()
    loaded = L.load_lm("tiny", lora=tmp_path / "peft")
    torch.testing.assert_close(logits(loaded, codes), logits(merged, codes), atol=1e-4, rtol=1e-4)
    out, _ = R.recover(MoshiRecovery(loaded, seed=0), np.zeros((8, 4), int), np.full((8, 4), 2, np.uint8))
    assert ((out >= 0) & (out < 2048)).all()            # a fused adapter streams


def test_incompatible_adapters_name_the_file(tmp_path):
    _moshi_adapter(tmp_path / "a", rank=4)
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    (tmp_path / "a" / "config.json").write_text(json.dumps({**cfg, "lora_rank": 8}))
    with pytest.raises(ModelFileError, match="lora.safetensors.*shapes"):
        L.load_lm("tiny", lora=tmp_path / "a")
    (tmp_path / "b").mkdir()
    save_file({"transformer.layers.9.gating.linear_in.lora_A.weight": torch.zeros(4, 64),
               "transformer.layers.9.gating.linear_in.lora_B.weight": torch.zeros(256, 4)},
              str(tmp_path / "b" / L.MOSHI_ADAPTER_FILE))
    (tmp_path / "b" / "config.json").write_text(json.dumps({"lora_rank": 4}))
    with pytest.raises(ModelFileError, match="no Linear layer 'transformer.layers.9"):
        L.load_lm("tiny", lora=tmp_path / "b")
    (tmp_path / "b" / "config.json").unlink()
    with pytest.raises(ModelFileError, match="config.json"):
        L.load_lm("tiny", lora=tmp_path / "b")
    (tmp_path / "b" / "config.json").write_text(json.dumps({"lora_rank": 4}))
    (tmp_path / "b" / L.BASE_INFO_FILE).write_text(json.dumps({"profile": "tiny", "seed": 5}))
    with pytest.raises(ModelFileError, match="seed 5"):
        L.load_lm("tiny", lora=tmp_path / "b")
    (tmp_path / "c").mkdir()
    with pytest.raises(ModelFileError, match="no adapter in"):
        L.load_lm("tiny", lora=tmp_path / "c")
