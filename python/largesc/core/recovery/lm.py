"""Moshi LM loading for token recovery: profiles, weights, and LoRA adapters.

Profiles (same names as the codec's):
- ``tiny``: a small random `LMModel` with Moshi's stream layout (text + 8 Moshi + 8 user
  codebooks of 2048, delays 0/1), seeded so that an adapter trained on it reloads exactly;
- ``kyutai-arch``: the 7.7 B Moshi architecture with random weights, built on the meta device
  and materialised in bf16 (timing only);
- ``kyutai``: Moshi from the Hugging Face cache or local files (`kyutai/moshiko-pytorch-bf16`);
- ``mini-v1``: the small LM trained in this repository (``train-lm``) on mini v1 tokens, shipped in models/mini-v1/lm/
  (config.json + model.safetensors): Moshi's layout without the user stream (n_q = dep_q = 8).

Adapters load in two formats and are always fused into plain `nn.Linear` weights, because
moshi's streaming code only accepts `nn.Linear`/`LoRALinear` (peft layers cannot stream):
- moshi's: `lora.safetensors` (`<module>.lora_A.weight`, `<module>.lora_B.weight`) with a
  `config.json` beside it holding `lora_rank` and `lora_scaling` (as moshi-finetune writes);
  layers absent from the file are left as they are;
- peft's: a directory with `adapter_config.json` + `adapter_model.safetensors`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from moshi.models import loaders
from moshi.models.lm import LMModel

from .. import torch_env  # noqa: F401  (sets NO_TORCH_COMPILE before moshi is imported)
from ..codec import ModelFileError
from ..profiles import LM_PROFILES, models_dir

MINI_LM_DIR = models_dir() / "mini-v1" / "lm"
MINI_LM_CONFIG, MINI_LM_WEIGHTS = "config.json", "model.safetensors"
MINI_LORA_DIR = MINI_LM_DIR.parent / "lora"   # the shipped recovery adapter (peft format)
KYUTAI_REPO = loaders.DEFAULT_REPO
KYUTAI_LM_FILE = loaders.MOSHI_NAME
MOSHI_ADAPTER_FILE = "lora.safetensors"
PEFT_ADAPTER_FILE = "adapter_model.safetensors"
PEFT_CONFIG_FILE = "adapter_config.json"
BASE_INFO_FILE = "largesc.json"   # beside an adapter: the base it was trained on (profile, seed)
# Keys of a moshi config.json that are not LMModel arguments (as CheckpointInfo pops them).
_NON_LM_KEYS = ("moshi_name", "mimi_name", "mimi_config_name", "tokenizer_name", "lora_name",
                "model_type", "lm_gen_config", "tts_config", "stt_config", "model_id",
                "lora", "lora_rank", "lora_scaling")
CPU_SLOWDOWN_NOTE = ("the kyutai LM (7.7 B) runs about 27x slower than real time on CPU "
                     "(2.2 s per 80 ms frame on 2 cores)")


def tiny_lm_kwargs() -> dict:
    """Small LMModel config with Moshi's layout: n_q=16, dep_q=8, card=2048, delays 0/1."""
    kw = dict(loaders._lm_kwargs)
    kw.update(dim=64, text_card=32, existing_text_padding_id=3, n_q=16, dep_q=8, card=2048,
              num_heads=4, num_layers=2, hidden_scale=2, context=64,
              depformer_dim=64, depformer_dim_feedforward=128, depformer_num_heads=4,
              depformer_num_layers=1, depformer_context=8)
    return kw


def mini_lm_kwargs(dim: int = 160, num_layers: int = 4, depformer_dim: int = 96,
                   depformer_num_layers: int = 1) -> dict:
    """Small LMModel config for `mini`: text + 8 generated codebooks of 2048 (delays 0 / 0 / 1 x 7),
    no user stream, so the embeddings are not spent on 8 streams that are always -1. The depformer
    keeps weights per step: moshi sizes its KV cache from them (it has no context of its own)."""
    kw = dict(loaders._lm_kwargs)
    kw.update(dim=dim, text_card=32, existing_text_padding_id=3, n_q=8, dep_q=8, card=2048,
              num_heads=max(1, dim // 32), num_layers=num_layers, hidden_scale=4.125, context=64,
              depformer_dim=depformer_dim, depformer_dim_feedforward=int(4.125 * depformer_dim),
              depformer_num_heads=max(1, depformer_dim // 32), depformer_num_layers=depformer_num_layers,
              depformer_weights_per_step=True, delays=[0] + [0] + [1] * 7)
    return kw


def lm_kwargs(profile: str) -> dict:
    """LMModel keyword arguments of a profile."""
    if profile == "tiny":
        return tiny_lm_kwargs()
    if profile == "mini-v1":
        return lm_config_from_json(MINI_LM_DIR / MINI_LM_CONFIG)
    if profile in ("kyutai", "kyutai-arch"):
        return dict(loaders._lm_kwargs)
    raise ValueError(f"unknown LM profile {profile!r}; choose one of {', '.join(LM_PROFILES)}")


def lm_config_from_json(path: str | Path) -> dict:
    """LMModel kwargs from a moshi `config.json` (non-LM keys removed); error names the file."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"LM config not found: {path}")
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"cannot read LM config {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelFileError(f"LM config {path} is not a JSON object")
    return {k: v for k, v in raw.items() if k not in _NON_LM_KEYS}


def random_lm(kwargs: dict, *, seed: int = 0, device: str | torch.device = "cpu",
              dtype: torch.dtype = torch.float32) -> LMModel:
    """A randomly initialised LMModel, reproducible from `seed` (global RNG left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lm = loaders.get_moshi_lm(None, lm_kwargs=kwargs, device="cpu", dtype=torch.float32)
    return lm.to(device=device, dtype=dtype).eval()


def materialise_random_lm(kwargs: dict, *, seed: int = 0, dtype: torch.dtype = torch.bfloat16,
                          device: str | torch.device = "cpu") -> LMModel:
    """Build on the meta device, then allocate directly in `dtype` and fill with N(0, 1/fan_in).

    This is how `kyutai-arch` fits: an fp32 7.7 B model would need 31 GB before the cast.
    """
    lm = LMModel(device=torch.device("meta"), dtype=dtype, **kwargs)
    lm = lm.to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, p in lm.named_parameters():
            if "norm" in name or name.endswith("alpha"):
                p.fill_(1.0)
            elif p.dim() >= 2:
                p.normal_(0.0, 1.0 / math.sqrt(p.shape[-1]), generator=gen)
            else:
                p.zero_()
        for _, b in lm.named_buffers():
            b.zero_()
    return lm.eval()


def _kyutai_lm_file(weights: str | Path | None) -> Path:
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ModelFileError(f"Moshi LM weights not found: {path}")
        return path
    from huggingface_hub import hf_hub_download
    try:
        return Path(hf_hub_download(KYUTAI_REPO, KYUTAI_LM_FILE))
    except Exception as exc:
        raise ModelFileError(
            f"Moshi LM weights '{KYUTAI_LM_FILE}' from '{KYUTAI_REPO}' are not in the Hugging Face cache "
            f"and could not be downloaded ({type(exc).__name__}). On a machine with network run: "
            f"huggingface-cli download {KYUTAI_REPO} {KYUTAI_LM_FILE}, or pass lm_weights=") from exc


def _check_safetensors(path: Path, what: str) -> None:
    if path.suffix not in (".safetensors", ".sft", ".sfts"):
        raise ModelFileError(f"refusing to load {what} {path}: only safetensors files are loaded")


def load_lm(profile: str = "tiny", *, weights: str | Path | None = None,
            config: str | Path | None = None, lora: str | Path | None = None,
            device: str = "cpu", dtype: torch.dtype | None = None, seed: int = 0,
            default_adapter: bool = True) -> LMModel:
    """The LM of a profile, with an optional LoRA adapter fused in; eval mode.

    `mini-v1` with its shipped weights and no `lora` gets the shipped recovery adapter
    (models/mini-v1/lora), as Moshi + LoRA in the paper; `default_adapter=False` (train-lora) or
    `lora` given overrides that, and `lora="none"` loads the base LM without any adapter.

    dtype defaults to bf16 for the full-size profiles (fp32 would need 31 GB) and fp32 for tiny.
    """
    if profile not in LM_PROFILES:
        from ..profiles import PROFILES, no_lm_message
        if profile in PROFILES:
            raise ValueError(no_lm_message(profile))
        raise ValueError(f"unknown LM profile {profile!r}; choose one of {', '.join(LM_PROFILES)}")
    dev = torch_env.resolve_device(device)
    torch_env.disable_compile_on_cpu(dev)
    big = profile in ("kyutai", "kyutai-arch")
    if dtype is None:
        dtype = torch.bfloat16 if big else torch.float32
    if isinstance(lora, str) and lora.lower() == "none":          # the base LM, explicitly
        lora, default_adapter = None, False
    if (profile == "mini-v1" and lora is None and weights is None and default_adapter
            and (MINI_LORA_DIR / PEFT_ADAPTER_FILE).is_file()):
        lora = MINI_LORA_DIR
    kwargs = lm_config_from_json(config) if config is not None else lm_kwargs(profile)
    # Read the adapter before building the LM: a bad file fails fast, not after a long build.
    adapter = None if lora is None else read_adapter(
        lora, expect_profile=profile, expect_seed=None if (big or profile == "mini-v1" or weights is not None) else seed)
    if profile == "mini-v1" and weights is None:
        weights = MINI_LM_DIR / MINI_LM_WEIGHTS
        if not weights.is_file():
            raise ModelFileError(f"mini LM weights not found: {weights} (train them with `gr-largesc train-lm`)")
    if profile in ("kyutai", "mini-v1") or weights is not None:
        path = _kyutai_lm_file(weights)
        _check_safetensors(path, "LM weights")
        try:
            lm = loaders.get_moshi_lm(path, lm_kwargs=kwargs, device=dev, dtype=dtype)
        except Exception as exc:
            cfg = f" with config {config}" if config is not None else ""
            raise ModelFileError(f"cannot load Moshi LM weights {path}{cfg}: {type(exc).__name__}: {exc}") from exc
    else:
        try:
            if profile == "kyutai-arch":
                lm = materialise_random_lm(kwargs, seed=seed, dtype=dtype, device=dev)
            else:
                lm = random_lm(kwargs, seed=seed, device=dev, dtype=dtype)
        except Exception as exc:
            if config is None:
                raise
            raise ModelFileError(f"LM config {config} does not build an LM: {type(exc).__name__}: {exc}") from exc
    if adapter is not None:
        apply_adapter(lm, adapter)
    return lm.eval()


def save_mini_lm(lm: LMModel, kwargs: dict, out_dir: str | Path, info: dict | None = None,
                 dtype: torch.dtype = torch.float16) -> None:
    """Write a shippable LM: config.json (LMModel kwargs), model.safetensors (fp16), largesc.json."""
    from safetensors.torch import save_file
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous()
               for k, v in lm.state_dict().items()}, str(out / MINI_LM_WEIGHTS))
    (out / MINI_LM_CONFIG).write_text(json.dumps({**kwargs, "model_type": "largesc-mini-lm"}, indent=1))
    (out / BASE_INFO_FILE).write_text(json.dumps({"profile": "mini-v1", **(info or {})}, indent=1))


def check_realtime(profile: str, device: str = "cpu", force: bool = False) -> None:
    """Refuse full-size recovery on CPU (far slower than real time) unless forced."""
    if profile in ("kyutai", "kyutai-arch") and torch_env.resolve_device(device).type == "cpu" and not force:
        raise RuntimeError(f"refusing to start {profile} token recovery on CPU: {CPU_SLOWDOWN_NOTE}. "
                           "Use device='cuda' (or 'auto' on a CUDA machine), or force_cpu=True to run "
                           "it anyway, e.g. for offline evaluation")


def adapter_format(path: str | Path) -> tuple[str, Path]:
    """('peft' | 'moshi', weights file) for an adapter path (file or directory)."""
    path = Path(path).expanduser()
    if path.is_dir():
        if (path / PEFT_CONFIG_FILE).is_file():
            return "peft", path / PEFT_ADAPTER_FILE
        if (path / MOSHI_ADAPTER_FILE).is_file():
            return "moshi", path / MOSHI_ADAPTER_FILE
        raise ModelFileError(f"no adapter in {path}: expected {MOSHI_ADAPTER_FILE} (+ config.json) "
                             f"or {PEFT_CONFIG_FILE} + {PEFT_ADAPTER_FILE}")
    if not path.is_file():
        raise ModelFileError(f"LoRA adapter not found: {path}")
    if path.name == PEFT_ADAPTER_FILE and (path.parent / PEFT_CONFIG_FILE).is_file():
        return "peft", path
    return "moshi", path


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ModelFileError(f"adapter config not found: {path}")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"cannot read adapter config {path}: {exc}") from exc


def _check_base(path: Path, profile: str | None, seed: int | None) -> None:
    """Adapters trained here record their base in `largesc.json`; a random base must match."""
    info = path.parent / BASE_INFO_FILE
    base = _read_json(info) if info.is_file() else {}
    if profile is not None and base.get("profile") not in (None, profile):
        raise ModelFileError(f"adapter {path} was trained on profile {base['profile']!r}, not {profile!r}")
    if seed is not None and base.get("seed") not in (None, seed):
        raise ModelFileError(f"adapter {path} was trained on the {profile} LM of seed {base['seed']}, not {seed}")


class Adapter:
    """A LoRA adapter read from disk: per-layer (A, B) pairs, rank and scaling."""

    def __init__(self, file: Path, pairs: dict, rank: int, scaling: float):
        self.file, self.pairs, self.rank, self.scaling = file, pairs, rank, scaling


def read_adapter(path: str | Path, *, expect_profile: str | None = None,
                 expect_seed: int | None = None) -> Adapter:
    """Read and check an adapter (moshi or peft format); every error names the file."""
    from safetensors.torch import load_file
    fmt, file = adapter_format(path)
    _check_safetensors(file, "LoRA adapter")
    if not file.is_file():
        raise ModelFileError(f"LoRA adapter weights not found: {file}")
    if fmt == "peft":
        meta = _read_json(file.parent / PEFT_CONFIG_FILE)
        rank, scaling = int(meta["r"]), float(meta["lora_alpha"]) / float(meta["r"])
    else:
        meta = _read_json(file.parent / "config.json")
        if "lora_rank" not in meta:
            raise ModelFileError(f"adapter config {file.parent / 'config.json'} has no lora_rank")
        rank, scaling = int(meta["lora_rank"]), float(meta.get("lora_scaling", 2.0))
    _check_base(file, expect_profile, expect_seed)
    try:
        state = load_file(str(file), device="cpu")
    except Exception as exc:
        raise ModelFileError(f"cannot read LoRA adapter {file}: {type(exc).__name__}: {exc}") from exc
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        name = key.removeprefix("base_model.model.").replace(".default.", ".")
        for part in ("lora_A", "lora_B"):
            if name.endswith(f".{part}.weight"):
                pairs.setdefault(name[: -len(f".{part}.weight")], {})[part] = value
                break
        else:
            raise ModelFileError(f"unexpected tensor {key!r} in LoRA adapter {file}")
    return Adapter(file, pairs, rank, scaling)


def apply_adapter(lm: LMModel, adapter: "Adapter | str | Path", **expect) -> LMModel:
    """Fuse a LoRA adapter into `lm`'s Linear weights (W += scaling * B @ A), in place."""
    if not isinstance(adapter, Adapter):
        adapter = read_adapter(adapter, **expect)
    file, rank = adapter.file, adapter.rank
    modules = dict(lm.named_modules())
    with torch.no_grad():
        for name, ab in adapter.pairs.items():
            mod = modules.get(name)
            if not isinstance(mod, torch.nn.Linear) or set(ab) != {"lora_A", "lora_B"}:
                raise ModelFileError(f"LoRA adapter {file} does not fit this LM: no Linear layer {name!r}")
            a, b = ab["lora_A"].float(), ab["lora_B"].float()
            if a.shape != (rank, mod.in_features) or b.shape != (mod.out_features, rank):
                raise ModelFileError(f"LoRA adapter {file}: shapes of {name!r} {tuple(a.shape)}/{tuple(b.shape)} "
                                     f"do not fit Linear({mod.in_features}, {mod.out_features}) at rank {rank}")
            delta = (b @ a) * adapter.scaling
            mod.weight.add_(delta.to(mod.weight.device, mod.weight.dtype))
    return lm
