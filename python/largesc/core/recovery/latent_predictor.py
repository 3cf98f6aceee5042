"""The `latent` strategy's model: an MLP in the codec's quantizer space (trained here,
training/train_latent.py; weights in models/<profile>/recovery/latent/).

For frame t it sees the vectors of the last `context` frames that went out (their decodable
prefix), frame t's own known prefix (its vector and its length m), and frame t+1 when the
one-frame hold has it (its vector and prefix length; a flag says whether it arrived). It
predicts the rest of frame t's vector beyond the prefix (MSE, normalised quantizer space); the
strategy adds the prefix and re-quantises the missing codebooks (core/recovery/latent.py).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class PredictorConfig:
    dim: int = 61                 # quantizer-space vector size of the codec
    num_codebooks: int = 8
    context: int = 4              # past frames seen
    hidden: int = 512
    layers: int = 3
    codec_sha256: str = ""        # the codec the predictor was trained on (a check at load time)

    @classmethod
    def from_dict(cls, d: dict) -> "PredictorConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def inputs(self) -> int:
        k1 = self.num_codebooks + 1
        return self.context * self.dim + (self.dim + k1) + (self.dim + k1 + 1)


class LatentPredictor(torch.nn.Module):
    def __init__(self, cfg: PredictorConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or PredictorConfig()
        dims = [cfg.inputs] + [cfg.hidden] * (cfg.layers - 1)
        mods = []
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [torch.nn.Linear(a, b), torch.nn.GELU()]
        mods.append(torch.nn.Linear(dims[-1], cfg.dim))
        self.net = torch.nn.Sequential(*mods)

    def features(self, past: torch.Tensor, own: torch.Tensor, m: torch.Tensor, nxt: torch.Tensor,
                 m_next: torch.Tensor, has_next: torch.Tensor) -> torch.Tensor:
        """past [B, C, D], own [B, D], m [B] (0..K), nxt [B, D], m_next [B], has_next [B] -> [B, inputs]."""
        k1 = self.cfg.num_codebooks + 1
        oh = torch.nn.functional.one_hot
        hn = has_next.to(own.dtype)[:, None]
        return torch.cat([past.flatten(1), own, oh(m.long(), k1).to(own.dtype),
                          nxt * hn, oh(m_next.long(), k1).to(own.dtype) * hn, hn], 1)

    def forward(self, past, own, m, nxt, m_next, has_next) -> torch.Tensor:
        """The predicted rest of the vector beyond the known prefix ([B, D])."""
        return self.net(self.features(past, own, m, nxt, m_next, has_next))

    @torch.no_grad()
    def predict(self, past: np.ndarray, own: np.ndarray, m: int, nxt: np.ndarray | None, m_next: int) -> np.ndarray:
        """One frame, numpy: the full target vector (own prefix + predicted rest)."""
        d = self.cfg.dim
        t = lambda a: torch.as_tensor(np.asarray(a, np.float32))  # noqa: E731
        has = nxt is not None
        rest = self(t(past)[None], t(own)[None], torch.tensor([m]), t(nxt if has else np.zeros(d))[None],
                    torch.tensor([m_next if has else 0]), torch.tensor([has]))
        return own + rest[0].numpy()


def save_predictor(model: LatentPredictor, out_dir, extra: dict | None = None) -> None:
    from safetensors.torch import save_file
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().float().contiguous() for k, v in model.state_dict().items()}, str(out / WEIGHTS_NAME))
    (out / CONFIG_NAME).write_text(json.dumps({**asdict(model.cfg), **(extra or {})}, indent=1))


def load_predictor(weights_dir) -> LatentPredictor:
    """Load a predictor folder (config.json + model.safetensors); a missing or mismatched file is
    named in the error."""
    from safetensors.torch import load_file
    d = Path(weights_dir)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (d / name).is_file():
            raise FileNotFoundError(f"latent predictor: {d / name} is missing (train it: gr-largesc train-latent)")
    try:
        cfg = PredictorConfig.from_dict(json.loads((d / CONFIG_NAME).read_text()))
        model = LatentPredictor(cfg)
        model.load_state_dict(load_file(str(d / WEIGHTS_NAME)))
    except Exception as e:  # noqa: BLE001  (corrupt json, wrong shapes, truncated safetensors)
        raise ValueError(f"latent predictor in {d} does not load: {e}") from e
    return model.eval()
