"""train-codec2 (training/train_mini2.py): the fitted layout (latent codebooks zero in the state
part and the reverse, the state codebooks where the config says), one global latent scale, and
the state weighted by its measured effect. Small data: the bundled clip's DRED analysis."""
import numpy as np
import pytest
import torch

from gnuradio.largesc.app.run_options import BUNDLED_CLIP
from gnuradio.largesc.core import audio_io
from gnuradio.largesc.core.codec import mini2, opus_dnn
from gnuradio.largesc.training import dred_cache, train_mini2

pytestmark = pytest.mark.skipif(not opus_dnn.available(), reason="the Opus DNN library is not built")


@pytest.fixture(scope="module")
def data():
    x, rate = audio_io.read_wav(BUNDLED_CLIP)
    z, s, _ = dred_cache.analyse_24k(audio_io.resample(x, rate, 24000))
    rng = np.random.default_rng(0)
    reps = -(-2200 // len(z))                       # k-means needs >= 2048 points
    zz = np.concatenate([z + 0.05 * rng.standard_normal(z.shape) for _ in range(reps)]).astype(np.float32)
    ss = np.concatenate([s + 0.01 * rng.standard_normal(s.shape) for _ in range(reps)]).astype(np.float32)
    return zz, ss, [({}, z, s, None)]


@pytest.mark.parametrize("state_codebooks", [1, 2])
def test_fit_layout_and_normalisation(data, state_codebooks):
    z, s, clips = data
    model, info = train_mini2.fit(z, s, clips, points=10 ** 6, iters=1, seed=0, state_index=1,
                                  effect_frames=20, state_codebooks=state_codebooks)
    cb = model.codebooks
    state_pos = list(range(1, 1 + state_codebooks))
    for k in range(mini2.K):             # each codebook lives in its own part of the vector
        lat, st = cb[k, :, : mini2.Z_DIM], cb[k, :, mini2.Z_DIM:]
        assert float((lat if k in state_pos else st).abs().max()) == 0, k
    assert float(cb[0, :, : mini2.Z_DIM].abs().max()) > 0 and float(cb[1, :, mini2.Z_DIM:].abs().max()) > 0
    assert model.cfg.state_index == 1 and len(info["state_residual"]) == state_codebooks
    # one global scale on the latents; the state divided by std / weight (weights from the effect)
    assert torch.allclose(model.v_std[: mini2.Z_DIM], model.v_std[0].expand(mini2.Z_DIM))
    eff = np.array(info["state_effect"])
    w = (s.std(0) + 1e-6) / model.v_std[mini2.Z_DIM:].numpy()
    assert np.allclose(w, np.sqrt(eff / eff.mean()), rtol=0.05)      # info rounds the effects
    assert w[13] > 2 * np.median(w) and w[2] > 2 * np.median(w)        # the dimensions the decoder hears
    # residual energies fall codebook by codebook
    assert all(a >= b for a, b in zip(info["latent_residual"], info["latent_residual"][1:]))


def test_unknown_options_are_refused(data):
    z, s, clips = data
    with pytest.raises(SystemExit, match="latent-norm"):
        train_mini2.fit(z, s, clips, points=3000, iters=1, seed=0, latent_norm="bogus")
    with pytest.raises(SystemExit, match="state-weight"):
        train_mini2.fit(z, s, clips, points=3000, iters=1, seed=0, state_weight="bogus")
