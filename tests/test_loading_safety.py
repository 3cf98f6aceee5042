"""Loading safety (docs/reliability.md), beyond tests/test_codec.py and tests/test_lm.py.

Weights, configs and adapters load from safetensors (and JSON) only: nothing may reach
torch.load / pickle, which moshi's loaders fall back to for other suffixes. A corrupted,
truncated or mismatched file gives a ModelFileError naming the file, raised when the block is
built (before the flowgraph starts).

Already covered elsewhere: missing files named, `.pt` refused and truncated Mimi weights
(test_codec.py); missing LM files, `.pt` LM weights, `lora.bin`, LM config/weights mismatch and
incompatible adapters (test_lm.py).
"""
import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from gnuradio.largesc.core import codec
from gnuradio.largesc.core.codec import ModelFileError, mimi
from gnuradio.largesc.core.recovery import lm as L

UNSAFE_SUFFIXES = ("weights.pt", "weights.pth", "weights.bin", "weights.ckpt", "weights.pkl",
                   "weights", "weights.SAFETENSORS", "weights.safetensors.pt")


class _Marker:
    """Unpickling this creates a file: proof that a pickle was executed."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def no_torch_load(monkeypatch):
    """Any torch.load (moshi's fallback for non-safetensors files) fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"torch.load reached with {args[:1]}")
    monkeypatch.setattr(torch, "load", refuse)


def evil_pickle(tmp_path, name):
    marker = tmp_path / "PWNED"
    path = tmp_path / name
    path.write_bytes(pickle.dumps({"state_dict": _Marker(marker)}))
    return path, marker


@pytest.mark.parametrize("name", UNSAFE_SUFFIXES)
def test_mimi_weights_other_than_safetensors_never_reach_torch_load(tmp_path, name, no_torch_load):
    path, marker = evil_pickle(tmp_path, name)
    with pytest.raises(ModelFileError, match=path.name):
        codec.load_codec("kyutai", mimi_weights=path, mimi_config=mimi.tiny_mimi_config())
    assert not marker.exists()


@pytest.mark.parametrize("name", UNSAFE_SUFFIXES)
def test_lm_weights_and_adapters_other_than_safetensors_never_reach_torch_load(tmp_path, name, no_torch_load):
    path, marker = evil_pickle(tmp_path, name)
    with pytest.raises(ModelFileError, match=path.name):
        L.load_lm("tiny", weights=path, config=None)
    with pytest.raises(ModelFileError, match=path.name):
        L.load_lm("tiny", lora=path)
    assert not marker.exists()


def test_pickle_named_safetensors_is_not_unpickled(tmp_path, no_torch_load):
    """A pickle renamed to .safetensors is parsed as safetensors (and fails), never unpickled."""
    lm_cfg = tmp_path / "lm_config.json"
    lm_cfg.write_text(json.dumps(L.tiny_lm_kwargs()))
    for loader in (lambda p: codec.load_codec("kyutai", mimi_weights=p, mimi_config=mimi.tiny_mimi_config()),
                   lambda p: L.load_lm("kyutai", weights=p, config=lm_cfg),
                   lambda p: L.read_adapter(p)):
        path, marker = evil_pickle(tmp_path, "lora.safetensors")
        (tmp_path / "config.json").write_text(json.dumps({"lora_rank": 4}))
        with pytest.raises(ModelFileError, match="lora.safetensors"):
            loader(path)
        assert not marker.exists()


def test_peft_folder_with_a_pickled_adapter_is_refused(tmp_path, no_torch_load):
    (tmp_path / L.PEFT_CONFIG_FILE).write_text(json.dumps({"r": 4, "lora_alpha": 8}))
    evil_pickle(tmp_path, "adapter_model.bin")         # peft's old pickle format
    with pytest.raises(ModelFileError, match=L.PEFT_ADAPTER_FILE):
        L.load_lm("tiny", lora=tmp_path)


def test_truncated_lm_weights_name_the_file(tmp_path):
    ref = L.load_lm("tiny", seed=1)
    weights = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(weights))
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    (tmp_path / "config.json").write_text(json.dumps(L.tiny_lm_kwargs()))
    with pytest.raises(ModelFileError, match="model.safetensors"):
        L.load_lm("kyutai", weights=weights, config=tmp_path / "config.json", dtype=torch.float32)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_adapter_names_the_file(tmp_path, damage):
    lm = L.load_lm("tiny")
    lin = next(n for n, m in lm.named_modules() if isinstance(m, torch.nn.Linear))
    mod = dict(lm.named_modules())[lin]
    path = tmp_path / L.MOSHI_ADAPTER_FILE
    save_file({f"{lin}.lora_A.weight": torch.zeros(4, mod.in_features),
               f"{lin}.lora_B.weight": torch.zeros(mod.out_features, 4)}, str(path))
    (tmp_path / "config.json").write_text(json.dumps({"lora_rank": 4}))
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\xff" * 64, "empty": b""}[damage])
    with pytest.raises(ModelFileError, match=L.MOSHI_ADAPTER_FILE):
        L.load_lm("tiny", lora=tmp_path)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "\xff"])
def test_corrupt_mimi_config_names_the_file(tmp_path, text):
    weights = tmp_path / "mimi.safetensors"
    save_file({"x": torch.zeros(1)}, str(weights))
    cfg = tmp_path / "mimi_config.json"
    cfg.write_text(text, encoding="latin-1")
    with pytest.raises(ModelFileError, match="mimi_config.json"):
        codec.load_codec("kyutai", mimi_weights=weights, mimi_config=cfg)


@pytest.mark.parametrize("text,match", [("{not json", "config.json"), ("[1]", "not a JSON object"),
                                        (json.dumps({"dim": 64, "bogus_key": 1}), "config.json")])
def test_corrupt_or_mismatched_lm_config_names_the_file(tmp_path, text, match):
    cfg = tmp_path / "config.json"
    cfg.write_text(text)
    with pytest.raises(ModelFileError, match=match):
        L.load_lm("tiny", config=cfg)


def test_mini_codec_folder_problems_name_the_folder(tmp_path):
    from gnuradio.largesc.core.codec import mini as M
    with pytest.raises(ModelFileError, match="config.json"):            # missing files
        codec.load_codec("mini", mimi_weights=tmp_path)
    cfg = M.MiniConfig(conv_dim=16, d_model=32, num_heads=2, enc_layers=1, dec_layers=1)
    M.save_mini_codec(M.MiniCodecModel(cfg), tmp_path)
    codec.load_codec("mini", mimi_weights=tmp_path)                      # the intact folder loads
    raw = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**raw, "d_model": 64}))
    with pytest.raises(ModelFileError, match=str(tmp_path)):            # config/weights mismatch
        codec.load_codec("mini", mimi_weights=tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(raw))
    w = tmp_path / M.WEIGHTS_NAME
    w.write_bytes(w.read_bytes()[:100])                                  # truncated weights
    with pytest.raises(ModelFileError, match="model.safetensors"):
        codec.load_codec("mini", mimi_weights=tmp_path)


def test_blocks_fail_at_construction_naming_the_file(tmp_path):
    """Before any flowgraph runs: the block constructor raises, naming the file (or parameter)."""
    from gnuradio.largesc.mimi_encoder import mimi_encoder
    from gnuradio.largesc.token_recovery import token_recovery
    weights = tmp_path / "mimi.safetensors"
    weights.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")       # a header and nothing else
    with pytest.raises(ModelFileError, match="mimi.safetensors"):
        mimi_encoder(profile="kyutai", mimi_weights=str(weights))
    with pytest.raises(ValueError, match="mimi_weights"):
        mimi_encoder(profile="kyutai", mimi_weights=str(tmp_path / "w.pt"))
    (tmp_path / "lora").mkdir()
    (tmp_path / "lora" / L.MOSHI_ADAPTER_FILE).write_bytes(b"garbage")
    (tmp_path / "lora" / "config.json").write_text(json.dumps({"lora_rank": 4}))
    with pytest.raises(ModelFileError, match=L.MOSHI_ADAPTER_FILE):
        token_recovery(strategy="moshi", profile="tiny", lora=str(tmp_path / "lora"))
    pt = tmp_path / "adapter.bin"
    pt.write_bytes(b"x")
    with pytest.raises(ValueError, match="lora"):
        token_recovery(strategy="moshi", profile="tiny", lora=str(pt))
