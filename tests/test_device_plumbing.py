"""Device plumbing of the codecs and recovery strategies, without a GPU (issue 21.7).

The model runs on torch's `meta` device, which stands in for an accelerator: like CUDA, an
operation that mixes a meta tensor with a (non-scalar) CPU tensor raises, so every tensor the
streaming and quantizer-space paths make must be made on the model's device. Meta tensors carry
no data, so `Meta` turns the copies back to the host into zeros and reads scalars as 0 (a GPU
gives the real values there); the tests check the plumbing and the shapes, not the numbers.
"""
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("NO_TORCH_COMPILE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("moshi")

from torch.overrides import TorchFunctionMode  # noqa: E402

from gnuradio.largesc.core.codec import rvq  # noqa: E402
from gnuradio.largesc.core.link import frames  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MINI_V1 = REPO / "python" / "largesc" / "models" / "mini-v1" / "codec"   # the WORLD codec (mini.py)
O, L, N = frames.STATE_ORIGINAL, frames.STATE_LOST, frames.STATE_NOT_SENT
_SCALARS = (torch.Tensor.item, torch.Tensor.__bool__, torch.Tensor.__int__, torch.Tensor.__float__,
            torch.Tensor.__index__, torch.Tensor.tolist)


_MOVES = {torch.Tensor.to, torch.Tensor.cpu, torch.Tensor.copy_, torch.Tensor.__getitem__,
          torch.Tensor.__setitem__, torch.as_tensor, torch.tensor,    # CUDA allows these across devices
          torch._has_compatible_shallow_copy_type}                   # (and Module.to uses this)


def _tensors(x):
    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, (list, tuple)):
        for y in x:
            yield from _tensors(y)
    elif isinstance(x, dict):
        for y in x.values():
            yield from _tensors(y)


def _to_host(args, kwargs) -> bool:
    targets = list(args[1:]) + list(kwargs.values())
    return any(isinstance(a, (str, torch.device)) and torch.device(a).type == "cpu" for a in targets)


class Meta(TorchFunctionMode):
    """meta as an accelerator: an operation on meta and non-scalar CPU tensors raises (as CUDA
    does; torch's meta kernels miss some, e.g. embedding), host copies of meta tensors are
    zeros, their scalars 0."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in _MOVES:
            ts = list(_tensors((args, kwargs)))
            if any(t.is_meta for t in ts) and any(t.device.type == "cpu" and t.dim() > 0 for t in ts):
                raise RuntimeError(f"{getattr(func, '__name__', func)} mixes meta and cpu tensors "
                                   "(on CUDA: 'Expected all tensors to be on the same device')")
        t = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if t is not None and t.is_meta:
            if func is torch.Tensor.cpu or (func is torch.Tensor.to and _to_host(args, kwargs)):
                return torch.zeros(t.shape, dtype=t.dtype)
            if func in _SCALARS:
                return func(torch.zeros(t.shape, dtype=t.dtype))
        return func(*args, **kwargs)


@pytest.fixture
def meta(monkeypatch):
    """The Meta mode, plus what meta lacks that a GPU has: generators, nonzero()."""
    import torch.fx.experimental._config as fx_config
    host_generator = torch.Generator

    class Generator(host_generator):                   # torch.Generator(device="meta") is refused
        def __new__(cls, device="cpu"):
            return host_generator("cpu")
    monkeypatch.setattr(torch, "Generator", Generator)
    with fx_config.patch(meta_nonzero_assume_all_nonzero=True), Meta():
        yield torch.device("meta")


def test_meta_stands_in_for_an_accelerator():
    """The premise: mixing devices raises on meta as on CUDA (else these tests prove nothing)."""
    with pytest.raises(RuntimeError, match="device"):
        torch.ones(3, device="meta") + torch.ones(3)


@pytest.fixture(scope="module")
def mini_meta():
    pytest.importorskip("pyworld", reason="pyworld (LARGESC_EXTRAS=mini) is needed by the mini codec")
    pytest.importorskip("pysptk", reason="pysptk (LARGESC_EXTRAS=mini) is needed by the mini codec")
    from gnuradio.largesc.core.codec.mini import load_mini_codec
    codec = load_mini_codec(MINI_V1, device="meta")
    assert next(codec.model.parameters()).is_meta
    return codec


def test_mini_v1_streams_on_the_models_device(mini_meta, meta):
    """`--device cuda` failed inside work(): stream_encode / stream_decode made CPU tensors."""
    codec = mini_meta
    x = (0.1 * np.random.default_rng(0).standard_normal(4 * frames.FRAME_SAMPLES)).astype(np.float32)
    codec.start_streaming()
    try:
        codes, latent = codec.stream_encode(x)
        assert codes.shape == (8, 3) and codes.dtype == np.int64 and latent.shape[1] == 3
        audio = codec.stream_decode(np.zeros((8, 3), np.int64), prefix=np.array([8, 2, 0]))
        assert audio.shape == (2 * frames.FRAME_SAMPLES,) and audio.dtype == np.float32
    finally:
        codec.stop_streaming()


def test_mini_v1_offline_and_quantizer_space_on_the_models_device(mini_meta, meta):
    codec, prefix = mini_meta, np.array([1, 8, 0])
    assert codec.decode(np.zeros((8, 3), np.int64), prefix).shape == (3 * frames.FRAME_SAMPLES,)
    v = codec.dequantize(np.zeros((8, 3), np.int64), prefix)
    assert v.shape == (codec.model.quantizer.vq.layers[0].decode(torch.zeros(1, 1, dtype=torch.long,
                                                                              device="meta")).shape[1], 3)
    assert codec.requantize(v, np.ones((8, 3), np.int64), prefix).shape == (8, 3)


def test_rvq_tensor_codebooks_on_their_device(meta):
    layers = [rvq.TensorCodebook(torch.zeros(2048, 16, device="meta")) for _ in range(4)]
    assert rvq.layers_device(layers).type == "meta"
    codes = np.arange(12).reshape(4, 3)
    assert rvq.dequantize(layers, codes, np.array([4, 1, 0])).shape == (16, 3)
    out = rvq.requantize(layers, np.zeros((16, 3), np.float32), codes, np.array([4, 1, 0]))
    assert out.shape == (4, 3) and (out[:, 0] == codes[:, 0]).all() and out[0, 1] == codes[0, 1]


def test_interp_recovery_runs_on_the_codecs_device(mini_meta, meta):
    from gnuradio.largesc.core import recovery as R
    rec = R.build("interp", codec=mini_meta)
    out = []
    for i, s in enumerate((O, L, O, N)):
        out += rec.push(np.full(8, i, np.int64), np.full(8, s, np.uint8))
    out += rec.flush()
    assert len(out) == 4 and all(t.shape == (8,) for t, _ in out)


def test_mimi_quantizer_space_on_the_models_device(meta):
    """`tiny` (Mimi's split RVQ): dequantize of codebook 0 alone and requantize probed the
    second quantizer with a CPU code."""
    from gnuradio.largesc.core.codec import load_codec
    codec = load_codec("tiny")
    codec.model.to("meta")
    codec.device = torch.device("meta")
    v = codec.dequantize(np.zeros((1, 3), np.int64))
    v8 = codec.dequantize(np.zeros((8, 3), np.int64), np.array([0, 1, 8]))
    assert v.shape == v8.shape and v.shape[1] == 3
    assert codec.requantize(v8, np.zeros((8, 3), np.int64), np.array([0, 1, 8])).shape == (8, 3)


@pytest.mark.parametrize("strategy", ["moshi", "moshi-mmse"])
def test_moshi_recovery_runs_on_the_lms_device(strategy, meta):
    from gnuradio.largesc.core.recovery import lm as lm_mod
    from gnuradio.largesc.core.recovery.moshi import MoshiRecovery
    lm = lm_mod.load_lm("tiny").to("meta")
    kw = {"codebook_vectors": [torch.randn(2048, 16) for _ in range(8)]} if strategy == "moshi-mmse" else {}
    rec = MoshiRecovery(lm, **kw)
    assert rec.device.type == "meta"
    out = []
    for i in range(4):
        out += rec.push(np.zeros(8, np.int64), np.full(8, O if i % 2 == 0 else L, np.uint8))
    out += rec.flush()
    assert len(out) == 4
    assert rec.counters["model_errors"] == 0 and rec.counters["frames_generated"] == 2
