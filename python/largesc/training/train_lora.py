"""LoRA fine-tuning of Moshi's LM for token recovery (`gr-largesc train-lora`), with peft.

Train as you infer. At inference (`moshi_recovery`, feedback ``masked``) the temporal
transformer sees received tokens and -1 (zero embedding) where nothing arrived, and the
depformer conditions codebook k on the real token of codebook k-1 when it is known and on its
own sample otherwise. So here:
- the temporal transformer runs on the *corrupted* codes (unknown = -1), and
- the depformer runs on the *clean* codes (teacher forcing, the usual stand-in for its samples),
which `LMModel.forward` cannot do (it feeds both the same codes). The loss is cross-entropy
against the clean tokens with our own mask (moshi's mask drops every -1 input position): lost
and not-sent positions weigh `--lost-weight`, received ones `--received-weight`, and codebook 0
is multiplied by `--cb0-weight`. Text is padding (id 3) and the user stream -1, as at inference.

Corruption: `token_data.corrupt` (p ~ U(0, 0.5), Bernoulli and burst erasures, UEP partial
frames, rate-limited codebooks). Optimiser: AdamW, linear warm-up then cosine decay, gradient
clipping; bf16 autocast on CUDA, fp32 on CPU. Checkpoints (safetensors) every `--save-every`
steps in OUT/checkpoint_NNNNNN/; `--resume` continues from the newest one. Several GPUs:
`torchrun --nproc_per_node=N -m gnuradio.largesc.training.train_lora ...` (DDP, one process per GPU).

Output (OUT): the peft adapter (adapter_config.json + adapter_model.safetensors), moshi's format
in OUT/moshi/ (lora.safetensors + config.json, every Linear present so moshi.server loads it
too), and largesc.json (base profile and seed). `token_recovery(lora=OUT)` loads either.
The default base is `mini-v1` (core/profiles.py DEFAULT_LM_PROFILE): the default `mini` codec
(v2) has no LM yet.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from moshi.models.lm_utils import _delay_sequence, _undelay_sequence

from ..core import torch_env  # noqa: F401  (NO_TORCH_COMPILE before moshi)
from ..core.link import frames
from ..core.profiles import DEFAULT_LM_PROFILE, LM_PROFILES
from ..core.recovery import lm as lm_mod
from . import token_data

TARGETS = {
    "main": r"transformer\.layers\.\d+\.(self_attn\.(in|out)_projs\.\d+|gating\.linear_(in|out))",
    "main+depformer": (r"(transformer|depformer)\.layers\.\d+\."
                       r"(self_attn\.(in|out)_projs\.\d+|gating\.(\d+\.)?linear_(in|out))"),
    "all": (r"((transformer|depformer)\.layers\.\d+\.(self_attn\.(in|out)_projs\.\d+|gating\.(\d+\.)?linear_(in|out))"
            r"|depformer_in\.\d+|linears\.\d+)"),
}
K = frames.NUM_CODEBOOKS


def recovery_forward(lm, corrupted: torch.Tensor, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Temporal transformer on `corrupted`, depformer teacher-forced on `clean` (both [B, 17, T]).

    Returns logits [B, dep_q, T, card] aligned with the codes, and the mask of valid positions
    (the delay pattern only; the caller decides which targets count).
    """
    B = corrupted.shape[0]
    initial = lm._get_initial_token().expand(B, -1, -1)
    seq = torch.cat([initial, _delay_sequence(lm.delays, corrupted, initial)], dim=2)
    ref = torch.cat([initial, _delay_sequence(lm.delays, clean, initial)], dim=2)
    transformer_out, _ = lm.forward_text(seq[:, :, :-1])
    logits = lm.forward_depformer_training(ref[:, :, 1:], transformer_out)
    return _undelay_sequence(lm.delays[1:1 + lm.dep_q], logits, fill_value=float("nan"))


class RecoveryObjective(torch.nn.Module):
    """Weighted clean-target cross-entropy of `recovery_forward` (a Module, so DDP can wrap it)."""

    def __init__(self, lm, *, lost_weight: float = 1.0, received_weight: float = 0.25, cb0_weight: float = 4.0):
        super().__init__()
        self.lm = lm
        self.lost_weight, self.received_weight, self.cb0_weight = lost_weight, received_weight, cb0_weight

    def forward(self, clean: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """clean [B, 8, T] tokens, states [B, 8, T] -> scalar loss."""
        inner = self.lm
        B, _, T = clean.shape
        user = torch.full((B, inner.n_q - inner.dep_q, T), -1, dtype=torch.long, device=clean.device)
        text = torch.full((B, 1, T), inner.text_padding_token_id, dtype=torch.long, device=clean.device)
        known = (states == frames.STATE_ORIGINAL) | (states == frames.STATE_COPY)
        full = torch.cat([text, clean, user], 1)
        corrupted = torch.cat([text, torch.where(known, clean, -1), user], 1)
        logits, valid = recovery_forward(inner, corrupted, full)
        weight = torch.where(known, self.received_weight, self.lost_weight).float()
        weight[:, 0] *= self.cb0_weight
        weight = weight * valid
        ce = F.cross_entropy(torch.nan_to_num(logits.float()).flatten(0, 2), clean.flatten(),
                             reduction="none").view_as(weight)
        return (ce * weight).sum() / weight.sum().clamp_min(1e-6)


# -- data -------------------------------------------------------------------------------------
def make_data(args):
    """(train, held-out) sources, each with .batch(batch, frames, rng) -> int64 [B, 8, T]."""
    if args.data.startswith("synthetic"):
        src = token_data.MarkovTokenSource(seed=args.data_seed)
        return src, src
    source = Path(args.data)
    if source.is_dir() and any(source.glob("*.npy")):
        corpus = token_data.TokenCorpus.from_dir(source, args.frames)
    else:
        from ..core import codec as codec_mod
        cache = Path(args.cache or Path(args.out) / "tokens")
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if not distributed or torch.distributed.get_rank() == 0:     # one process encodes
            codec = codec_mod.load_codec(args.codec_profile or args.profile, device=args.device)
            token_data.encode_to_cache(source, cache, codec, progress=args.progress)
        if distributed:
            torch.distributed.barrier()
        corpus = token_data.TokenCorpus.from_dir(cache, args.frames)
    return corpus.split(0.05)


def batch_tensors(source, batch: int, num_frames: int, rng: np.random.Generator, device):
    clean = source.batch(batch, num_frames, rng)
    states = np.stack([token_data.corrupt(num_frames, rng) for _ in range(batch)])
    return (torch.as_tensor(clean, dtype=torch.long, device=device),
            torch.as_tensor(states.astype(np.int64), device=device))


# -- checkpoints ------------------------------------------------------------------------------
def _trainable(model) -> list[tuple[str, torch.nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def save_checkpoint(folder: Path, peft_model, opt, step: int, meta: dict) -> None:
    from safetensors.torch import save_file
    folder.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(folder), safe_serialization=True)
    params = [p for _, p in _trainable(peft_model)]
    tensors = {}
    for i, p in enumerate(params):
        for key, value in opt.state.get(p, {}).items():
            tensors[f"{i}.{key}"] = torch.as_tensor(value).detach().float().cpu().contiguous().reshape(
                value.shape if torch.is_tensor(value) else ())
    save_file(tensors, str(folder / "optimizer.safetensors"))
    (folder / "trainer_state.json").write_text(json.dumps({"step": step, **meta}, indent=1))


def load_checkpoint(folder: Path, peft_model, opt) -> int:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    weights = load_file(str(folder / lm_mod.PEFT_ADAPTER_FILE))
    set_peft_model_state_dict(peft_model, weights)
    state = load_file(str(folder / "optimizer.safetensors"))
    params = [p for _, p in _trainable(peft_model)]
    for key, value in state.items():
        i, name = key.split(".", 1)
        p = params[int(i)]
        opt.state[p][name] = value.to(p.device) if name != "step" else value
    return int(json.loads((folder / "trainer_state.json").read_text())["step"])


def latest_checkpoint(out: Path) -> Path | None:
    found = sorted(out.glob("checkpoint_*/trainer_state.json"))
    return found[-1].parent if found else None


def export_adapter(out: Path, peft_model, args) -> None:
    """Final adapter: peft format in OUT/, moshi format in OUT/moshi/, base info in both."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file
    out.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(out), safe_serialization=True)
    base = {"profile": args.profile, "seed": args.base_seed, "rank": args.rank, "alpha": args.alpha,
            "targets": args.targets, "lm_weights": args.lm_weights, "steps": args.steps}
    state = get_peft_model_state_dict(peft_model)
    moshi = {}
    for key, value in state.items():
        name = key.removeprefix("base_model.model.").replace(".default.", ".")
        moshi[name] = value.detach().float().cpu().contiguous()
    inner = peft_model.get_base_model()
    for name, mod in inner.named_modules():
        if isinstance(mod, torch.nn.Linear) and ".lora_" not in name and "base_layer" not in name:
            name = name.removesuffix(".base_layer")
            if f"{name}.lora_A.weight" not in moshi:
                moshi[f"{name}.lora_A.weight"] = torch.zeros(args.rank, mod.in_features)
                moshi[f"{name}.lora_B.weight"] = torch.zeros(mod.out_features, args.rank)
    (out / "moshi").mkdir(exist_ok=True)
    save_file(moshi, str(out / "moshi" / lm_mod.MOSHI_ADAPTER_FILE))
    config = lm_mod.lm_config_from_json(args.lm_config) if args.lm_config else lm_mod.lm_kwargs(args.profile)
    config.update(lora=True, lora_rank=args.rank, lora_scaling=args.alpha / args.rank)
    (out / "moshi" / "config.json").write_text(json.dumps(config, indent=1))
    for folder in (out, out / "moshi"):
        (folder / lm_mod.BASE_INFO_FILE).write_text(json.dumps(base, indent=1))


# -- training ---------------------------------------------------------------------------------
def lr_at(step: int, args) -> float:
    warm = max(1, int(args.warmup * args.steps))
    if step < warm:
        return args.lr * (step + 1) / warm
    frac = (step - warm) / max(1, args.steps - warm)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


@torch.no_grad()
def heldout_loss(objective, source, args, device) -> float:
    """Mean loss on fixed held-out batches (same seed every time, so values compare)."""
    rng = np.random.default_rng([args.seed, 987654321])
    objective.eval()
    losses = []
    for _ in range(args.eval_batches):
        clean, states = batch_tensors(source, args.batch, args.frames, rng, device)
        with _autocast(device):
            losses.append(float(objective(clean, states)))
    objective.train()
    return float(np.mean(losses))


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gr-largesc train-lora", description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default=DEFAULT_LM_PROFILE, choices=LM_PROFILES, help="base LM profile")
    p.add_argument("--lm-weights", help="local Moshi LM safetensors (default: profile's)")
    p.add_argument("--lm-config", help="moshi config.json for --lm-weights")
    p.add_argument("--seed", type=int, default=0, help="seed of training (LoRA init, batches, corruption)")
    p.add_argument("--base-seed", type=int, default=0, help="seed of the random base LM (tiny, kyutai-arch)")
    p.add_argument("--data", default="synthetic",
                   help="'synthetic' (Markov token source), a folder of .npy token files, a folder of audio, "
                        "or a .jsonl manifest of audio")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic source")
    p.add_argument("--codec-profile", help="codec profile to encode audio with (default: --profile)")
    p.add_argument("--cache", help="token cache folder (default OUT/tokens)")
    p.add_argument("--out", required=True, help="output folder (adapter, checkpoints)")
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--alpha", type=float, help="peft lora_alpha (default 2*rank: moshi's scaling 2.0)")
    p.add_argument("--targets", default="main+depformer", choices=sorted(TARGETS),
                   help="LoRA target modules: main transformer, + depformer, or all Linear but text")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--frames", type=int, default=48, help="sequence length in 80 ms frames")
    p.add_argument("--lr", type=float, help="peak learning rate (default 1e-2 for tiny, 1e-4 otherwise)")
    p.add_argument("--warmup", type=float, default=0.05, help="warm-up fraction of the steps")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--lost-weight", type=float, default=1.0)
    p.add_argument("--received-weight", type=float, default=0.25)
    p.add_argument("--cb0-weight", type=float, default=4.0)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--eval-batches", type=int, default=4)
    p.add_argument("--save-every", type=int, default=0, help="checkpoint interval (0: only at the end)")
    p.add_argument("--resume", action="store_true", help="continue from OUT's newest checkpoint")
    p.add_argument("--device", default="auto")
    p.add_argument("--num-threads", type=int, default=1)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def train(args) -> dict:
    """Run training; returns a summary dict (initial and final held-out loss, steps, seconds)."""
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm
    args.alpha = float(args.alpha if args.alpha is not None else 2 * args.rank)
    if args.lr is None:
        args.lr = 1e-2 if args.profile == "tiny" else 1e-4
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = int(os.environ.get("RANK", "0"))
    if distributed:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            args.device = f"cuda:{torch.cuda.current_device()}"
    torch_env.use_threads(args.num_threads)
    device = torch_env.resolve_device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    lm = lm_mod.load_lm(args.profile, weights=args.lm_weights, config=args.lm_config, device=str(device),
                        dtype=dtype, seed=args.base_seed, default_adapter=False)
    lm.train()
    config = LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0, target_modules=TARGETS[args.targets])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed + 1)
        peft_model = get_peft_model(lm, config)
    inner = peft_model.get_base_model()
    objective = RecoveryObjective(inner, lost_weight=args.lost_weight, received_weight=args.received_weight,
                                  cb0_weight=args.cb0_weight)
    model = objective
    if distributed:
        ids = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(objective, device_ids=ids)
    params = [p for _, p in _trainable(peft_model)]
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.95), weight_decay=args.weight_decay)
    out = Path(args.out)
    start = 0
    if args.resume and (ckpt := latest_checkpoint(out)) is not None:
        start = load_checkpoint(ckpt, peft_model, opt)
    train_src, held_src = make_data(args)
    first = heldout_loss(objective, held_src, args, device) if rank == 0 else float("nan")
    summary = {"heldout_loss_start": first, "start_step": start}
    bar = tqdm(range(start, args.steps), desc="train-lora", disable=not args.progress or rank != 0,
               initial=start, total=args.steps)
    t0, loss_ema = time.time(), None
    for step in bar:
        rng = np.random.default_rng([args.seed, step, rank])
        clean, states = batch_tensors(train_src, args.batch, args.frames, rng, device)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        with _autocast(device):
            loss = model(clean, states)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, args.clip)
        opt.step()
        value = float(loss.detach())
        loss_ema = value if loss_ema is None else 0.9 * loss_ema + 0.1 * value
        bar.set_postfix(loss=f"{loss_ema:.3f}", lr=f"{lr_at(step, args):.2e}")
        done = step + 1
        if rank == 0 and args.eval_every and done % args.eval_every == 0 and done < args.steps:
            bar.write(f"step {done}: held-out loss {heldout_loss(objective, held_src, args, device):.4f}")
        if rank == 0 and args.save_every and done % args.save_every == 0:
            save_checkpoint(out / f"checkpoint_{done:06d}", peft_model, opt, done, {"loss": loss_ema})
    if rank == 0:
        summary.update(heldout_loss_end=heldout_loss(objective, held_src, args, device),
                       steps=args.steps, seconds=time.time() - t0, train_loss=loss_ema)
        save_checkpoint(out / f"checkpoint_{args.steps:06d}", peft_model, opt, args.steps, {"loss": loss_ema})
        export_adapter(out, peft_model, args)
        (out / "train_summary.json").write_text(json.dumps(summary, indent=1))
    if distributed:
        torch.distributed.destroy_process_group()
    return summary


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    summary = train(args)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"held-out loss {summary['heldout_loss_start']:.4f} -> {summary['heldout_loss_end']:.4f} "
              f"in {summary['steps'] - summary['start_step']} steps ({summary['seconds']:.0f} s); "
              f"adapter written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
