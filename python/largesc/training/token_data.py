"""Token data for LoRA training and recovery tests: sources, the corruption recipe, and caches.

- `MarkovTokenSource`: a synthetic token process with real structure (a hidden state that mostly
  steps forward on a cycle; codebook 0 emitted from the state, codebook k a fixed function of
  codebook k-1, a little noise), so that a model can beat `repeat` and we can measure it.
- `corrupt`: the training corruption recipe (docs/models/mini.md) as per-token `frames.STATE_*` codes.
- `erasure_states`: a plain Bernoulli frame-erasure channel with UEP copies, for evaluation.
- `TokenCorpus`: token files (`.npy`, int16 [8, F]) cached from wav folders or a jsonl manifest.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.link import frames

K = frames.NUM_CODEBOOKS


class MarkovTokenSource:
    """Synthetic Mimi-like tokens [8, F] with temporal and cross-codebook dependencies."""

    def __init__(self, seed: int = 0, num_states: int = 16, alphabet: int = 32,
                 p_next: float = 0.7, p_stay: float = 0.2, noise: float = 0.03):
        rng = np.random.default_rng(seed)
        self.num_states, self.alphabet = num_states, alphabet
        self.p_next, self.p_stay, self.noise = p_next, p_stay, noise
        self.tokens = np.stack([rng.choice(frames.CODEBOOK_SIZE, alphabet, replace=False) for _ in range(K)])
        self.emit = rng.permutation(alphabet)[:num_states]
        self.maps = np.stack([rng.permutation(alphabet) for _ in range(K)])

    def sample(self, num_frames: int, rng: np.random.Generator) -> np.ndarray:
        """One sequence: int64 [8, num_frames]."""
        u = rng.random(num_frames)
        jump = rng.integers(0, self.num_states, num_frames)
        state = np.empty(num_frames, dtype=np.int64)
        s = int(rng.integers(self.num_states))
        for t in range(num_frames):
            if t:
                s = (s + 1) % self.num_states if u[t] < self.p_next else (
                    s if u[t] < self.p_next + self.p_stay else int(jump[t]))
            state[t] = s
        sym = np.empty((K, num_frames), dtype=np.int64)
        sym[0] = self.emit[state]
        for k in range(K):
            if k:
                sym[k] = self.maps[k][sym[k - 1]]
            noisy = rng.random(num_frames) < self.noise
            sym[k, noisy] = rng.integers(0, self.alphabet, int(noisy.sum()))
        return np.take_along_axis(self.tokens, sym, axis=1)

    def batch(self, batch: int, num_frames: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([self.sample(num_frames, rng) for _ in range(batch)])


def _frame_losses(num_frames: int, p: float, rng: np.random.Generator, burst: float | None) -> np.ndarray:
    """Lost-frame mask: Bernoulli(p), or Gilbert-Elliott with mean loss p and mean burst `burst`."""
    if burst is None or p <= 0:
        return rng.random(num_frames) < p
    p = min(p, 0.95)
    to_bad = min(1.0, p / (burst * (1 - p)))
    to_good = 1.0 / burst
    lost = np.empty(num_frames, dtype=bool)
    bad = rng.random() < p
    for t in range(num_frames):
        lost[t] = bad
        bad = (rng.random() >= to_good) if bad else (rng.random() < to_bad)
    return lost


def corrupt(num_frames: int, rng: np.random.Generator, p: float | None = None) -> np.ndarray:
    """Training corruption recipe -> states uint8 [8, F].

    - p ~ U(0, 0.5) per sequence; frame erasures i.i.d. (half the sequences) or in bursts
      (Gilbert-Elliott, mean burst 1.5-5 frames);
    - UEP-consistent partial frames: a lost frame's lowest R codebooks (R in 1..3) survive through
      a copy with a per-sequence probability;
    - rate limits: in half the sequences the controller's N drops below 8 in segments of ~1 s,
      and codebooks >= N are never sent.
    """
    p = rng.uniform(0.0, 0.5) if p is None else p
    burst = None if rng.random() < 0.5 else rng.uniform(1.5, 5.0)
    lost = _frame_losses(num_frames, p, rng, burst)
    states = np.full((K, num_frames), frames.STATE_ORIGINAL, dtype=np.uint8)
    n_send = np.full(num_frames, K)
    if rng.random() < 0.5:
        for start in range(0, num_frames, 12):
            n_send[start:start + 12] = rng.integers(1, K + 1)
    copy_prob = rng.uniform(0.0, 1.0)
    for t in np.flatnonzero(lost):
        states[:, t] = frames.STATE_LOST
        if rng.random() < copy_prob:
            states[: int(rng.integers(1, 4)), t] = frames.STATE_COPY
    cb = np.arange(K)[:, None]
    states[cb >= n_send[None, :]] = frames.STATE_NOT_SENT
    return states


def erasure_states(num_frames: int, p: float, rng: np.random.Generator, *, copy_prob: float = 0.5,
                   copy_codebooks: int = 1) -> np.ndarray:
    """Evaluation channel: frames lost i.i.d. with prob p; a lost frame keeps its lowest
    `copy_codebooks` codebooks through a UEP copy with prob `copy_prob`. -> states [8, F]."""
    states = np.full((K, num_frames), frames.STATE_ORIGINAL, dtype=np.uint8)
    lost = rng.random(num_frames) < p
    states[:, lost] = frames.STATE_LOST
    copied = lost & (rng.random(num_frames) < copy_prob)
    states[:copy_codebooks, copied] = frames.STATE_COPY
    return states


def apply_states(codes: np.ndarray, states: np.ndarray, unknown: int = -1) -> np.ndarray:
    """Received view of clean codes: tokens whose state is not known become `unknown`."""
    return np.where(np.isin(states, frames.KNOWN_STATES), codes, unknown)


class TokenCorpus:
    """Token files `*.npy` (int16 [8, F]) in a folder, served as random fixed-length crops."""

    def __init__(self, files: list[Path], num_frames: int):
        self.files = sorted(files)
        if not self.files:
            raise FileNotFoundError("no token files (*.npy) to train on")
        self.arrays = [np.load(f, allow_pickle=False).astype(np.int64) for f in self.files]
        self.arrays = [a for a in self.arrays if a.shape[0] == K and a.shape[1] >= num_frames]
        if not self.arrays:
            raise ValueError(f"no token file has [{K}, >= {num_frames}] frames")
        self.num_frames = num_frames

    @classmethod
    def from_dir(cls, folder: str | Path, num_frames: int) -> "TokenCorpus":
        return cls(list(Path(folder).glob("*.npy")), num_frames)

    def split(self, heldout: float = 0.05) -> tuple["TokenCorpus", "TokenCorpus"]:
        """(train, held-out) by file; at least one file held out when there are two or more."""
        n = max(1, int(round(len(self.arrays) * heldout))) if len(self.arrays) > 1 else 0
        train, held = TokenCorpus.__new__(TokenCorpus), TokenCorpus.__new__(TokenCorpus)
        for part, arrays in ((train, self.arrays[: len(self.arrays) - n] or self.arrays),
                             (held, self.arrays[len(self.arrays) - n:] or self.arrays)):
            part.files, part.arrays, part.num_frames = [], arrays, self.num_frames
        return train, held

    def batch(self, batch: int, num_frames: int, rng: np.random.Generator) -> np.ndarray:
        out = []
        for _ in range(batch):
            a = self.arrays[int(rng.integers(len(self.arrays)))]
            start = int(rng.integers(0, a.shape[1] - num_frames + 1))
            out.append(a[:, start:start + num_frames])
        return np.stack(out)


def audio_files(source: str | Path) -> list[Path]:
    """Audio paths from a folder (recursive wav/flac/mp3/ogg) or a jsonl manifest.

    Manifest lines are {"path": ..., ...} with paths relative to the manifest's folder (the
    moshi-finetune and `training.corpus` layout); lines with "split": "heldout" are never read.
    """
    source = Path(source)
    if source.is_dir():
        return sorted(p for ext in ("wav", "flac", "mp3", "ogg") for p in source.rglob(f"*.{ext}"))
    if source.suffix == ".jsonl" and source.is_file():
        out = []
        for line in source.read_text().splitlines():
            entry = json.loads(line) if line.strip() else None
            if entry and entry.get("split") != "heldout":
                path = Path(entry["path"])
                out.append(path if path.is_absolute() else source.parent / path)
        return out
    raise FileNotFoundError(f"data source not found (a folder of audio or a .jsonl manifest): {source}")


def encode_to_cache(source: str | Path, cache_dir: str | Path, codec, *, progress: bool = True) -> Path:
    """Encode every audio file of `source` with `codec` (a TokenCodec) into `cache_dir/*.npy`.

    Files already cached are skipped, so an interrupted run resumes where it stopped.
    """
    import sphn
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    files = audio_files(source)
    if not files:
        raise FileNotFoundError(f"no audio files in {source}")
    from tqdm import tqdm
    for i, path in enumerate(tqdm(files, desc="encode", disable=not progress)):
        out = cache / f"{i:06d}_{path.stem}.npy"
        if out.exists():
            continue
        pcm, _ = sphn.read(str(path), sample_rate=frames.SAMPLE_RATE)
        codes = codec.encode(np.asarray(pcm, dtype=np.float32).mean(0))
        np.save(out, np.asarray(codes, dtype=np.int16)[:K])
    return cache
