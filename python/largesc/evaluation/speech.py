"""Evaluation speech sets: real held-out speech with transcripts, prepared offline by one command.

Sources (all real human speech, all in the hold-out that no training in this repo uses; see
data/heldout.json and python/largesc/training/corpus.py):

| source | how it is obtained | licence |
|---|---|---|
| LibriVox *Sense and Sensibility*, 5 utterances, 16 kHz | pocketsphinx 5.1.1 sdist from PyPI, `test/data/librivox/*.wav` + `.txt` | public domain (LibriVox); sdist code BSD-2-Clause |
| CMU "cards", 5 short utterances, 16 kHz | same sdist, `test/data/cards/*.wav` + `cards.transcription` | BSD-2-Clause (CMU Sphinx) |
| Allison Smith IVR prompts, 8 kHz | Debian `asterisk-core-sounds-en-wav` (+ `asterisk-core-sounds-en` for the transcripts); only the held-out prompts: index i of the sorted wav list with i % 20 == 10 (data/heldout.json `heldout_allison_every_nth`) | CC-BY-SA-3.0 |
| bundled clip | python/largesc/data/speech_librivox_16k.wav (LibriVox 0890, in the package) | public domain |

Every clip is written as 16 kHz mono 16-bit wav (8 kHz sources are upsampled; they stay band
limited to 4 kHz), with a manifest.json: [{id, path, text, source, licence, seconds, rate}].

Sets: ``heldout`` (all of the above that are available), ``quick`` (4 utterances: LibriVox 0880
and 0890, the first two held-out Allison prompts of 2.5-8 s; the bundled clip replaces what is
missing), ``test`` (the bundled clip and LibriVox 0880, or a second bundled excerpt without
transcript if the sdist is unavailable), ``bundled`` (the bundled clip alone: no download),
``unseen`` (64 clips of speakers no model here trained on, from the training corpus's held-out
split: its 20 English clips with transcripts, 4 clips of each of the 8 game characters held out
whole and 12 of the fr-CA speaker, the selection of `gr-largesc eval-codec`; needs
`gr-largesc prepare-corpus` first), ``standard`` (30 clips of unseen speakers for the standard
report: 12 English with transcripts from `unseen` (the LibriVox reader, CMU cards and go-forward,
ARCTIC clb, one ALSA prompt), one clip of each of the 8 held-out game characters, 5 fr-CA and 5
German prompts from Debian's asterisk-prompt-de, fetched on first use: evaluation/german.py).
"""
from __future__ import annotations

import glob
import gzip
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from ..core.audio_io import read_wav, resample, write_wav
from ..training.workspace import CACHE, HELDOUT_FILE

log = logging.getLogger(__name__)
FS = 16000
PKG_DIR = Path(__file__).resolve().parents[1]
BUNDLED = PKG_DIR / "data" / "speech_librivox_16k.wav"
BUNDLED_TEXT = "unless to be rather cold hearted and rather selfish is to be ill disposed"
SDIST = "pocketsphinx-5.1.1.tar.gz"
ALLISON_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ALLISON_TEXT = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
SETS = ("heldout", "quick", "test", "bundled", "unseen", "standard")
STANDARD_EN, STANDARD_FR, STANDARD_DE = 12, 5, 5
UNSEEN_GAME_PER_SPEAKER, UNSEEN_FR = 4, 12
LICENCES = {
    "librivox": "public domain (LibriVox); pocketsphinx sdist BSD-2-Clause",
    "cards": "BSD-2-Clause (CMU Sphinx)",
    "allison": "CC-BY-SA-3.0 (Allison Smith; Debian asterisk-core-sounds-en)",
    "bundled": "public domain (LibriVox)",
}


def default_cache() -> Path:
    return Path(os.environ.get("LARGESC_EVAL_CACHE", Path.home() / ".cache" / "gr-largesc" / "eval"))


def _heldout_every() -> int:
    f = HELDOUT_FILE
    try:
        return int(json.loads(f.read_text()).get("heldout_allison_every_nth", 20))
    except (OSError, ValueError):
        return 20


SDIST_SHA256 = "675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355"


def _sha256(path: Path) -> str:
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_sdist(cache: Path) -> Path | None:
    cands = [cache / "src" / SDIST, default_cache() / "src" / SDIST, CACHE / "src" / SDIST]
    return next((c for c in cands if c.is_file() and c.stat().st_size > 1_000_000), None)


def fetch_sdist(cache: Path, timeout_s: float = 300.0) -> Path | None:
    """The pocketsphinx 5.1.1 sdist from PyPI, with pip. `pip download --no-binary :all:` fetches
    the tarball and then builds its metadata, which can take minutes (or fail) in a venv; the
    tarball is complete before that step, so it is taken from pip's temporary directory as soon
    as its SHA-256 matches, and pip is stopped. Tries this interpreter's pip, then `python3`."""
    import time
    got = find_sdist(cache)
    if got:
        return got
    dst = cache / "src"
    dst.mkdir(parents=True, exist_ok=True)
    target = dst / SDIST
    for py in dict.fromkeys([sys.executable, shutil.which("python3") or sys.executable]):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [py, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", tmp + "/d",
                   "pocketsphinx==5.1.1"]
            try:
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        env=dict(os.environ, TMPDIR=tmp))
            except OSError as exc:
                log.warning("pip download with %s failed: %s", py, exc)
                continue
            t0 = time.time()
            try:
                while time.time() - t0 < timeout_s:
                    done = proc.poll() is not None
                    for hit in glob.glob(os.path.join(tmp, "**", SDIST), recursive=True):
                        if os.path.getsize(hit) > 30_000_000 and _sha256(Path(hit)) == SDIST_SHA256:
                            shutil.copyfile(hit, target)
                            return target
                    if done:
                        break
                    time.sleep(1.0)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    log.warning("pocketsphinx sdist not available: LibriVox/cards clips skipped")
    return None


def _save(out: Path, uid: str, x: np.ndarray, rate: int, text: str, source: str, licence: str) -> dict:
    y = resample(x, rate, FS)
    path = out / "wav" / f"{uid}.wav"
    write_wav(path, y, FS)
    return {"id": uid, "path": str(path.relative_to(out)), "text": text.strip(), "source": source,
            "licence": licence, "seconds": round(len(y) / FS, 3), "rate": rate}


def _sdist_items(out: Path, sdist: Path) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(sdist) as tf:
        members = [m for m in tf.getmembers()
                   if re.search(r"/test/data/(librivox/[^/]+\.(wav|txt)|cards/[^/]+\.wav|cards/cards\.transcription)$", m.name)]
        tf.extractall(tmp, members=members)
        base = Path(tmp) / "pocketsphinx-5.1.1" / "test" / "data"
        for w in sorted((base / "librivox").glob("*.wav")):
            x, r = read_wav(w)
            uid = "librivox_" + w.stem.rsplit("-", 1)[-1]
            rows.append(_save(out, uid, x, r, w.with_suffix(".txt").read_text(), "pocketsphinx-5.1.1 sdist "
                              f"test/data/librivox/{w.name}", LICENCES["librivox"]))
        tr = {}
        tfile = base / "cards" / "cards.transcription"
        if tfile.exists():
            for line in tfile.read_text().splitlines():
                m = re.match(r"(.*)\((\S+)\)\s*$", line.strip())
                if m:
                    tr[m.group(2)] = m.group(1).replace("<s>", "").replace("</s>", "")
        for w in sorted((base / "cards").glob("*.wav")):
            x, r = read_wav(w)
            rows.append(_save(out, f"cards_{w.stem}", x, r, tr.get(w.stem, ""),
                              f"pocketsphinx-5.1.1 sdist test/data/cards/{w.name}", LICENCES["cards"]))
    return rows


def _allison_items(out: Path, min_s: float = 1.5, max_s: float = 12.0) -> list[dict]:
    if not ALLISON_DIR.is_dir():
        log.warning("%s missing (apt-get install asterisk-core-sounds-en asterisk-core-sounds-en-wav): "
                    "Allison prompts skipped", ALLISON_DIR)
        return []
    trans = {}
    if ALLISON_TEXT.is_file():
        for line in gzip.open(ALLISON_TEXT, "rt", errors="ignore"):
            if ":" in line and not line.startswith(";"):
                k, v = line.split(":", 1)
                trans[k.strip()] = v.strip()
    every = _heldout_every()
    files = sorted(glob.glob(str(ALLISON_DIR / "**" / "*.wav"), recursive=True))
    rows = []
    for i, f in enumerate(files):
        if i % every != every // 2:
            continue
        key = os.path.relpath(f, ALLISON_DIR).rsplit(".", 1)[0]
        text = trans.get(key, "")
        if not text or text.startswith("["):
            continue
        x, r = read_wav(f)
        if not min_s <= len(x) / r <= max_s:
            continue
        rows.append(_save(out, "allison_" + key.replace("/", "__"), x, r, text,
                          f"asterisk-core-sounds-en-wav {key}.wav", LICENCES["allison"]))
    return rows


def _unseen_items(out: Path, corpus: Path | None = None) -> list[dict]:
    """The `unseen` set from the corpus's held-out split (evaluation/codec_compare.py's selection)."""
    from ..training.corpus import DEFAULT_OUT
    from .codec_compare import select_clips
    corpus = Path(corpus) if corpus else DEFAULT_OUT
    if not (corpus / "manifest.jsonl").is_file():
        raise FileNotFoundError(f"speech set 'unseen' needs the training corpus in {corpus}: run "
                                "`gr-largesc prepare-corpus --no-synth` first")
    rows = []
    for r in select_clips(corpus, UNSEEN_GAME_PER_SPEAKER, UNSEEN_FR):
        x, rate = read_wav(corpus / r["path"])
        uid = f"{r['group']}_" + Path(r["path"]).stem.replace(" ", "_")
        text = r.get("text", "") if r["group"] == "en" else ""      # Whisper-base WER on English only
        rows.append({**_save(out, uid, x, rate, text, f"corpus {r['path']} ({r.get('source', '')})",
                             r.get("licence", "see training/corpus.py")), "group": r["group"],
                     "speaker": r.get("speaker", "")})
    return rows


def _standard_items(out: Path, cache: Path) -> list[dict]:
    """The `standard` set: 30 clips of speakers no model here trained on (module docstring)."""
    from . import german
    rows = _unseen_items(out)
    en = [r for r in rows if r["group"] == "en" and r["text"] and r["seconds"] >= 1.5
          and (r["speaker"] != "alsa_male" or r["id"] == "en_Front_Right")][:STANDARD_EN]
    game, seen = [], set()
    for r in rows:          # each held-out game character's first clip of at least 2.5 s
        if r["group"] == "game" and r["speaker"] not in seen and r["seconds"] >= 2.5:
            game.append(r)
            seen.add(r["speaker"])
    fr = [r for r in rows if r["group"] == "fr" and r["seconds"] >= 2.4][:STANDARD_FR]
    de = [{**_save(out, f"de_{name}", x, rate, "", f"{german.PACKAGE} {german.VERSION} sounds/de/{name}.gsm",
                   german.LICENCE), "group": "de", "speaker": "de_asterisk_prompt"}
          for name, x, rate in german.clips(cache, STANDARD_DE)]
    if len(de) < STANDARD_DE:     # no partial set: it would be cached and reused as the whole one
        raise FileNotFoundError(f"speech set 'standard' needs {STANDARD_DE} German prompts from Debian's "
                                f"{german.PACKAGE} {german.VERSION} and got {len(de)}: check the network "
                                f"({german.URLS[0]}) and that sox is installed (see the log above)")
    return en + game + fr + de


def _bundled_items(out: Path) -> list[dict]:
    x, r = read_wav(BUNDLED)
    return [_save(out, "bundled_librivox_0890", x, r, BUNDLED_TEXT,
                  "gr-largesc python/largesc/data/speech_librivox_16k.wav", LICENCES["bundled"])]


def prepare(name: str = "heldout", cache: Path | None = None, out: Path | None = None) -> Path:
    """Build speech set `name`; returns the path of its manifest.json (reused when present)."""
    if name not in SETS:
        raise ValueError(f"unknown speech set {name!r}; choose one of {', '.join(SETS)}")
    cache = Path(cache) if cache else default_cache()
    out = Path(out) if out else cache / "speech" / name
    man = out / "manifest.json"
    if man.is_file():
        return man
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    if name == "bundled":
        rows = _bundled_items(out)
    elif name == "unseen":
        rows = _unseen_items(out)
    elif name == "standard":
        rows = _standard_items(out, cache)
    else:
        sd = fetch_sdist(cache)
        sd_rows = _sdist_items(out, sd) if sd else []
        lib = [r for r in sd_rows if r["id"].startswith("librivox_")]
        if name == "heldout":
            rows = sd_rows + _allison_items(out)
            if not rows:
                rows = _bundled_items(out)
        elif name == "quick":
            rows = [r for r in lib if r["id"] in ("librivox_0880", "librivox_0890")]
            rows += [r for r in _allison_items(out, 2.5, 8.0)][:2]
            fill = [r for r in lib if r not in rows] + _bundled_items(out)
            rows += fill[:max(0, 4 - len(rows))]
        elif name == "test":
            b = _bundled_items(out)
            second = [r for r in lib if r["id"] == "librivox_0880"]
            if not second:   # offline: an excerpt of the bundled clip, without transcript (no WER)
                x, r = read_wav(BUNDLED)
                second = [_save(out, "bundled_excerpt", x[: int(2.8 * r)], r, "", b[0]["source"] + " [0, 2.8 s)",
                                LICENCES["bundled"])]
            rows = b + second
    man.write_text(json.dumps(rows, indent=1))
    # tidy: remove wav files not in the manifest
    keep = {r["path"] for r in rows}
    for w in (out / "wav").glob("*.wav"):
        if str(w.relative_to(out)) not in keep:
            w.unlink()
    return man


def load(manifest: str | Path, limit: int | None = None) -> list[dict]:
    """Utterances of a manifest: each row plus `audio` (float32, 16 kHz)."""
    manifest = Path(manifest)
    rows = json.loads(manifest.read_text())
    if limit:
        rows = rows[:limit]
    out = []
    for r in rows:
        x, rate = read_wav(manifest.parent / r["path"])
        if rate != FS:
            x = resample(x, rate, FS)
        out.append({**r, "audio": x.astype(np.float32)})
    return out


def resolve(spec: str, cache: Path | None = None) -> Path:
    """A set name or a manifest path -> manifest path."""
    if spec in SETS:
        return prepare(spec, cache)
    p = Path(spec)
    if p.is_dir():
        p = p / "manifest.json"
    if not p.is_file():
        raise FileNotFoundError(f"speech set {spec!r}: neither a set name ({', '.join(SETS)}) nor a manifest")
    return p
