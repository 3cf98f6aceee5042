"""Build the `mini` training corpus from offline sources (docs/models/mini.md).

Everything ends up as 24 kHz mono 16-bit WAV under ``<out>/wav/<source>/`` with one manifest line
per clip in ``<out>/manifest.jsonl``::

    {"path": "wav/asterisk/en_US_f_Allison/...wav", "duration": 2.31, "speaker": "en_US_f_Allison",
     "source": "asterisk-core-sounds-en-wav", "licence": "CC-BY-SA-3.0", "split": "train",
     "lang": "en", "text": "..."}

Sources (install with scripts/install_train_deps.sh):

* real speech: game dialogue from two freeware games in Debian main (training/game_speech.py,
  5.5 kHz band, whole characters held out), Debian asterisk prompts (en/es Allison, fr-CA June, it Carlo and Menardi, ru, es-CO and
  fr Armelle, the last two GSM-coded), and for evaluation only the pocketsphinx sdist clips
  (LibriVox, cards, goforward), CMU ARCTIC a0007 from the pysptk wheel and the ALSA test phrases;
* synthetic speech: espeak-ng (many voices x variants, speed/pitch/level varied), flite (built-in
  voices, duration/pitch varied) and festival (every installed voice, duration varied), speaking
  sentences gathered from text already on the machine (asterisk transcripts, licence texts, Debian
  package descriptions) plus generated number/phone/date phrases.

The held-out evaluation split is defined by the committed ``data/heldout.json``: those clips and
voices get ``split: "heldout"`` and no trainer reads them. A few percent of the training voices'
clips get ``split: "valid"`` (validation loss only).

Usage: ``python -m gnuradio.largesc.training.corpus [--out cache/corpus] [--synth-minutes 90] [--jobs 1]``.
Re-running skips clips already on disk (the manifest is rewritten from scratch each time).
"""
from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .workspace import CACHE, HELDOUT_FILE  # noqa: F401  (HELDOUT_FILE: the split's file, for callers)

LOG = logging.getLogger("largesc.corpus")
SAMPLE_RATE = 24000
DEFAULT_OUT = CACHE / "corpus"
ASTERISK = Path("/usr/share/asterisk/sounds")

# (speaker dir or glob, source package, licence, lang, transcript file)
ASTERISK_SPEAKERS = [
    ("en_US_f_Allison", "asterisk-core-sounds-en-wav", "CC-BY-SA-3.0", "en",
     "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"),
    ("es_MX_f_Allison", "asterisk-core-sounds-es-wav", "CC-BY-SA-3.0", "es", None),
    ("fr_CA_f_June", "asterisk-core-sounds-fr-wav", "CC-BY-SA-3.0", "fr", None),
    ("it_IT_m_Carlo", "asterisk-core-sounds-it-wav", "CC-BY-SA-3.0", "it", None),
    ("it_IT_f_Menardi", "asterisk-prompt-it-menardi-wav", "CC-BY-SA-3.0", "it", None),
    ("ru_RU_f_IvrvoiceRU", "asterisk-core-sounds-ru-wav", "CC-BY-SA-3.0", "ru", None),
    ("es", "asterisk-prompt-es-co", "GPL-2", "es", None),          # es-CO, GSM-coded
    ("fr", "asterisk-prompt-fr-armelle", "GPL-2", "fr", None),     # Armelle, GSM-coded
]
SPEAKER_NAMES = {"es": "es_CO_asterisk_prompt", "fr": "fr_FR_f_Armelle"}

# espeak-ng variants that do not sound like a human talker are left out of training.
ESPEAK_SKIP_VARIANTS = {"whisper", "whisperf", "Demonic", "UniRobot", "anikaRobot", "croak", "fast", "Tweaky",
                        "robosoft", "robosoft2", "robosoft3", "robosoft4", "robosoft5", "robosoft6",
                        "robosoft7", "robosoft8", "announcer", "Mr", "AnxiousAndy", "RicishayMax",
                        "RicishayMax2", "RicishayMax3", "kaukovalta", "Storm", "UniversalRobot"}
ESPEAK_EN_VOICES = ["en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                    "en-029", "en-us-nyc"]
ESPEAK_OTHER_VOICES = ["de", "fr", "es", "it", "ru", "nl", "pl", "pt", "sv", "hi", "vi", "cmn", "ja", "tr", "cs"]
FLITE_VOICES = ["kal", "kal16", "awb", "rms", "slt"]
FESTIVAL_VOICES = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]  # English ones speak our text


def load_heldout(path: Path = HELDOUT_FILE) -> dict:
    with open(path) as f:
        return json.load(f)


# ----------------------------------------------------------------------------- audio helpers

def _run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def to_24k(src: str, dst: Path, gain_db: float = 0.0, fmt: str | None = None) -> float:
    """Convert any sox-readable file to 24 kHz mono s16 WAV; returns its duration in seconds."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        tmp = dst.with_suffix(".tmp.wav")
        cmd = ["sox", "-V1"] + (["-t", fmt] if fmt else []) + [src, "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16",
                                                                 "-e", "signed-integer", str(tmp)]
        if gain_db:
            cmd += ["gain", f"{gain_db:.2f}"]
        _run(cmd)
        os.replace(tmp, dst)
    return wav_duration(dst)


def wav_duration(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / float(w.getframerate())


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV -> float32 in [-1, 1], sample rate."""
    with wave.open(str(path)) as w:
        fs, n, ch, sw = w.getframerate(), w.getnframes(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(n)
    if sw != 2:
        raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
    x = np.frombuffer(raw, np.int16).astype(np.float32) / 32768.0
    if ch > 1:
        x = x.reshape(-1, ch).mean(1)
    return x, fs


def write_wav(path: str | Path, x: np.ndarray, fs: int = SAMPLE_RATE) -> None:
    y = np.clip(np.asarray(x, np.float64), -1, 1 - 1 / 32768)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(fs)
        w.writeframes((y * 32768).astype(np.int16).tobytes())


def load_audio_24k(path: str | Path) -> np.ndarray:
    """Read a corpus WAV (or any 16-bit WAV, resampled) as float32 at 24 kHz."""
    x, fs = read_wav(path)
    if fs != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly
        g = gcd(fs, SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // g, fs // g).astype(np.float32)
    return x


def _silent(path: Path, thresh=1e-3) -> bool:
    x, _ = read_wav(path)
    return x.size == 0 or float(np.sqrt(np.mean(x ** 2))) < thresh


# ----------------------------------------------------------------------------- text

_NUM = "zero one two three four five six seven eight nine".split()
_MONTHS = ("January February March April May June July August September October November "
           "December").split()
_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()


def _sentences_from(text: str) -> list[str]:
    text = re.sub(r"\s+", " ", text)
    out = []
    for s in re.split(r"(?<=[.!?])\s+", text):
        s = s.strip()
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9 ,;:'\-.!?()]+", s or "-"):
            continue
        words = s.split()
        if 4 <= len(words) <= 28 and sum(w.isupper() and len(w) > 1 for w in words) < 3:
            out.append(s)
    return out


def gather_sentences(seed: int = 0, limit: int = 20000) -> list[str]:
    """English sentences from text that every Debian machine has, plus generated phrases."""
    sents: list[str] = []
    tr = "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
    if os.path.exists(tr):
        for line in gzip.open(tr, "rt", errors="ignore"):
            if ":" in line and not line.startswith(";"):
                t = line.split(":", 1)[1].strip()
                if t and not t.startswith("["):
                    sents.append(t)
    for f in sorted(glob.glob("/usr/share/common-licenses/*")):
        if os.path.isfile(f):
            sents += _sentences_from(open(f, errors="ignore").read())
    status = "/var/lib/dpkg/status"
    if os.path.exists(status):
        desc = []
        for line in open(status, errors="ignore"):
            if line.startswith(" ") and not line.strip() == ".":
                desc.append(line.strip())
        sents += _sentences_from(" ".join(desc))
    rng = random.Random(seed)
    for _ in range(600):
        k = rng.randrange(4)
        if k == 0:
            sents.append("Please call " + " ".join(rng.choice(_NUM) for _ in range(rng.randint(5, 10))) + ".")
        elif k == 1:
            sents.append(f"The meeting is on {rng.choice(_DAYS)}, {rng.choice(_MONTHS)} {rng.randint(1, 28)}, "
                         f"at {rng.randint(1, 12)} {rng.choice(['in the morning', 'in the afternoon', 'pm', 'am'])}.")
        elif k == 2:
            sents.append(f"You have {rng.randint(2, 99)} new messages and {rng.randint(2, 9)} saved messages.")
        else:
            sents.append(f"Your balance is {rng.randint(2, 999)} dollars and {rng.randint(2, 99)} cents.")
    seen, uniq = set(), []
    for s in sents:
        k = s.lower()
        if k not in seen:
            seen.add(k)
            uniq.append(s)
    rng.shuffle(uniq)
    return uniq[:limit]


def text_is_heldout(s: str, fraction: float) -> bool:
    h = int(hashlib.sha1(s.lower().encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return h < fraction


# ----------------------------------------------------------------------------- sources

def real_asterisk(out: Path, held: dict) -> list[dict]:
    rows = []
    every = int(held.get("heldout_allison_every_nth", 20))
    held_spk = set(held.get("heldout_real_speakers", []))
    for sub, pkg, lic, lang, trfile in ASTERISK_SPEAKERS:
        d = ASTERISK / sub
        if not d.is_dir():
            LOG.warning("missing %s (install %s)", d, pkg)
            continue
        trans = {}
        if trfile and os.path.exists(trfile):
            for line in gzip.open(trfile, "rt", errors="ignore"):
                if ":" in line and not line.startswith(";"):
                    k, v = line.split(":", 1)
                    trans[k.strip()] = v.strip()
        files = sorted(glob.glob(str(d / "**" / "*.wav"), recursive=True)) + \
            sorted(glob.glob(str(d / "**" / "*.gsm"), recursive=True))
        if sub in ("es", "fr"):  # the GSM prompt packages; skip files that are links into other packages
            files = [f for f in files if f.endswith(".gsm")]
        speaker = SPEAKER_NAMES.get(sub, sub)
        for i, f in enumerate(files):
            key = os.path.relpath(f, d).rsplit(".", 1)[0]
            dst = out / "wav" / "asterisk" / speaker / (key.replace("/", "__") + ".wav")
            try:
                dur = to_24k(f, dst)
            except subprocess.CalledProcessError as e:
                LOG.warning("sox failed on %s: %s", f, e.stderr.decode()[-200:])
                continue
            if dur < 0.3:
                continue
            split = "train"
            if speaker in held_spk or (sub == "en_US_f_Allison" and i % every == every // 2):
                split = "heldout"
            elif _hash01(speaker + key) < 0.02:
                split = "valid"
            rows.append(dict(path=str(dst.relative_to(out)), duration=round(dur, 3), speaker=speaker,
                             source=pkg, licence=lic, split=split, lang=lang, text=trans.get(key, ""),
                             kind="real"))
    return rows


def _hash01(s: str) -> float:
    return int(hashlib.md5(s.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def _find_sdist(cache_src: Path) -> Path | None:
    for p in [cache_src / "pocketsphinx-5.1.1.tar.gz", *glob.glob("/tmp/**/pocketsphinx-5.1.1.tar.gz", recursive=True)]:
        if Path(p).exists():
            return Path(p)
    return None


def fetch_pocketsphinx_sdist(cache_src: Path) -> Path | None:
    """The pocketsphinx 5.1.1 sdist (PyPI) carries real test utterances. pip downloads it but then tries
    to build its metadata, which fails without a compiler toolchain for it; the file is kept anyway."""
    got = _find_sdist(cache_src)
    if got:
        if got.parent != cache_src:
            cache_src.mkdir(parents=True, exist_ok=True)
            shutil.copy(got, cache_src / got.name)
            got = cache_src / got.name
        return got
    cache_src.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        env = dict(os.environ, TMPDIR=tmp)
        try:  # stop pip before it builds: --no-build-isolation + a bogus build backend is not needed;
            # the tarball is saved to pip's unpack dir first, we copy it from there.
            p = subprocess.Popen([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                                  "-d", str(cache_src), "pocketsphinx==5.1.1"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            import time
            t0 = time.time()
            while p.poll() is None and time.time() - t0 < 300:
                hits = glob.glob(os.path.join(tmp, "**", "pocketsphinx-5.1.1.tar.gz"), recursive=True)
                if hits and os.path.getsize(hits[0]) > 1_000_000:
                    time.sleep(2)
                    shutil.copy(hits[0], cache_src / "pocketsphinx-5.1.1.tar.gz")
                    p.kill()
                    break
                time.sleep(0.5)
            if p.poll() is None:
                p.kill()
            p.wait()                 # a killed pip must be gone before its TMPDIR is removed
        except OSError as e:
            LOG.warning("pip download failed: %s", e)
    return _find_sdist(cache_src)


def real_external(out: Path, held: dict, cache_src: Path) -> list[dict]:
    """Held-out real English speech from the pocketsphinx sdist, the pysptk wheel and alsa-utils."""
    rows = []
    ext = held["external_real"]

    def add(src_file, name, key, text, fmt=None, extra=()):
        dst = out / "wav" / "external" / name / f"{key}.wav"
        if fmt == "raw16k":
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_suffix(".16k.wav")
            raw = np.fromfile(src_file, np.int16).astype(np.float32) / 32768.0
            write_wav(tmp, raw, 16000)
            src_file = str(tmp)
        dur = to_24k(str(src_file), dst)
        if fmt == "raw16k":
            os.remove(src_file)
        info = ext[name]
        rows.append(dict(path=str(dst.relative_to(out)), duration=round(dur, 3), speaker=info["speaker"],
                         source=info["source"].split(" ")[0], licence=info["licence"], split="heldout",
                         lang=info["lang"], text=text, kind="real"))

    sd = fetch_pocketsphinx_sdist(cache_src)
    if sd is None:
        LOG.warning("pocketsphinx sdist not available: LibriVox/cards clips skipped")
    else:
        with tempfile.TemporaryDirectory() as tmp, tarfile.open(sd) as tf:
            members = [m for m in tf.getmembers() if "/test/data/" in m.name]
            tf.extractall(tmp, members=members)
            base = Path(tmp) / "pocketsphinx-5.1.1" / "test" / "data"
            for w in sorted((base / "librivox").glob("*.wav")):
                add(w, "librivox", w.stem, w.with_suffix(".txt").read_text().strip())
            tr = {}
            tfile = base / "cards" / "cards.transcription"
            if tfile.exists():
                for line in tfile.read_text().splitlines():
                    m = re.match(r"(.*)\((\S+)\)\s*$", line.strip())
                    if m:
                        tr[m.group(2).strip()] = m.group(1).replace("<s>", "").replace("</s>", "").strip()
            for w in sorted((base / "cards").glob("*.wav")):
                add(w, "cards", w.stem, tr.get(w.stem, tr.get(f"cards/{w.stem}", "")))
            if (base / "goforward.raw").exists():
                add(base / "goforward.raw", "goforward", "goforward", ext["goforward"]["text"], fmt="raw16k")
    try:
        import pysptk
        a = Path(pysptk.__file__).parent / "example_audio_data" / "arctic_a0007.wav"
        if a.exists():
            add(a, "arctic", "arctic_a0007", ext["arctic"]["text"])
    except ImportError:
        LOG.warning("pysptk not installed: arctic clip skipped")
    for w in sorted(glob.glob("/usr/share/sounds/alsa/*.wav")):
        stem = Path(w).stem
        if stem.lower() == "noise":
            continue
        add(w, "alsa", stem, stem.replace("_", " "))
    return rows


def _espeak_jobs(sents, held, rng, n):
    variants = [v.split("/")[-1] for v in _espeak_variants() if v.split("/")[-1] not in ESPEAK_SKIP_VARIANTS]
    held_var = set(held.get("heldout_espeak_variants", []))
    jobs = []
    for i in range(n):
        voice = rng.choice(ESPEAK_EN_VOICES) if rng.random() < 0.8 else rng.choice(ESPEAK_OTHER_VOICES)
        var = rng.choice(variants)
        jobs.append(dict(engine="espeak-ng", voice=voice, variant=var, held=var in held_var,
                         speed=rng.randint(120, 210), pitch=rng.randint(15, 85), gain=rng.uniform(-14, 0)))
    return jobs


_VARIANT_CACHE: list[str] = []


def _espeak_variants() -> list[str]:
    if not _VARIANT_CACHE:
        try:
            out = _run(["espeak-ng", "--voices=variant"]).stdout.decode()
            _VARIANT_CACHE.extend(line.split()[4] for line in out.splitlines()[1:] if len(line.split()) > 4)
        except (OSError, subprocess.CalledProcessError):
            pass
    return _VARIANT_CACHE


def synth_one(job: dict, text: str, dst: Path) -> float | None:
    if dst.exists():
        return wav_duration(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "o.wav")
        eng = job["engine"]
        try:
            if eng == "espeak-ng":
                _run(["espeak-ng", "-v", f"{job['voice']}+{job['variant']}", "-s", str(job["speed"]),
                      "-p", str(job["pitch"]), "-w", raw, text], timeout=60)
            elif eng == "flite":
                _run(["flite", "-voice", job["voice"], "--setf", f"duration_stretch={job['stretch']:.2f}",
                      "--setf", f"int_f0_target_mean={job['f0']}", "-t", text, "-o", raw], timeout=60)
            elif eng == "festival":
                scm = os.path.join(tmp, "t.scm")
                with open(scm, "w") as f:
                    f.write(f"(Parameter.set 'Duration_Stretch {job['stretch']:.2f})\n")
                txt = os.path.join(tmp, "t.txt")
                with open(txt, "w") as f:
                    f.write(text + "\n")
                _run(["text2wave", "-eval", f"(voice_{job['voice']})", "-eval", scm, txt, "-o", raw], timeout=120)
            else:
                raise ValueError(eng)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
            LOG.warning("%s %s failed: %s", eng, job.get("voice"), getattr(e, "stderr", e))
            return None
        if not os.path.exists(raw) or os.path.getsize(raw) < 2000:
            return None
        dur = to_24k(raw, dst, gain_db=job.get("gain", 0.0))
    if _silent(dst):
        dst.unlink()
        return None
    return dur


def synthetic(out: Path, held: dict, minutes: float, seed: int, jobs_n: int) -> list[dict]:
    rng = random.Random(seed)
    sents = gather_sentences(seed)
    frac = float(held.get("heldout_text_fraction", 0.05))
    tr_sents = [s for s in sents if not text_is_heldout(s, frac)]
    ho_sents = [s for s in sents if text_is_heldout(s, frac)]
    LOG.info("sentences: %d train, %d held-out", len(tr_sents), len(ho_sents))
    held_voices = set(held.get("heldout_synthetic_voices", []))
    # a clip lasts about 4 s: plan the job list by the requested minutes, 60 % espeak, 25 % flite, 15 % festival
    n_total = int(minutes * 60 / 4.0)
    plan = _espeak_jobs(sents, held, rng, int(n_total * 0.6))
    for _ in range(int(n_total * 0.25)):
        plan.append(dict(engine="flite", voice=rng.choice(FLITE_VOICES), stretch=rng.uniform(0.8, 1.3),
                         f0=rng.randint(80, 220), gain=rng.uniform(-14, 0)))
    for _ in range(int(n_total * 0.15)):
        plan.append(dict(engine="festival", voice=rng.choice(FESTIVAL_VOICES), stretch=rng.uniform(0.85, 1.25),
                         gain=rng.uniform(-14, 0)))
    for j in plan:
        if j["engine"] != "espeak-ng":
            j["held"] = f"{j['engine']}:{j['voice']}" in held_voices
        j["text"] = rng.choice(ho_sents if j["held"] else tr_sents)
    # held-out voices also get a fixed set of held-out sentences for WER
    rows = []

    def work(args):
        i, j = args
        name = f"{i:06d}"
        vname = j["voice"] + (f"+{j['variant']}" if j["engine"] == "espeak-ng" else "")
        dst = out / "wav" / "synth" / j["engine"] / vname / f"{name}.wav"
        dur = synth_one(j, j["text"], dst)
        if dur is None or dur < 0.5:
            return None
        speaker = f"{j['engine']}:{vname}"
        split = "heldout" if j["held"] else ("valid" if _hash01(speaker + name) < 0.02 else "train")
        lic = {"espeak-ng": "GPL-3.0-or-later (espeak-ng output)", "flite": "BSD-style (CMU flite voices)",
               "festival": "festvox voice licence (BSD-style / free)"}[j["engine"]]
        return dict(path=str(dst.relative_to(out)), duration=round(dur, 3), speaker=speaker,
                    source=j["engine"], licence=lic, split=split, lang="en" if j["voice"].startswith("en") or
                    j["engine"] != "espeak-ng" else j["voice"], text=j["text"], kind="synthetic",
                    params={k: (round(v, 3) if isinstance(v, float) else v) for k, v in j.items()
                            if k not in ("text", "held", "engine", "voice")})

    with ThreadPoolExecutor(max_workers=max(1, jobs_n)) as ex:
        for k, r in enumerate(ex.map(work, enumerate(plan))):
            if r:
                rows.append(r)
            if k % 200 == 0:
                LOG.info("synthetic %d/%d", k, len(plan))
    return rows


def build(out: Path, synth_minutes: float, seed: int, jobs_n: int, skip_synth: bool = False,
          games: bool = True) -> list[dict]:
    held = load_heldout()
    out.mkdir(parents=True, exist_ok=True)
    rows = real_external(out, held, CACHE / "src")
    LOG.info("external held-out clips: %d", len(rows))
    rows += real_asterisk(out, held)
    LOG.info("after asterisk: %d clips", len(rows))
    if games:
        from .game_speech import game_rows
        rows += game_rows(out, CACHE / "src", to_24k)
        LOG.info("after game dialogue: %d clips", len(rows))
    if not skip_synth:
        rows += synthetic(out, held, synth_minutes, seed, jobs_n)
    tmp = out / "manifest.jsonl.tmp"
    with open(tmp, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    os.replace(tmp, out / "manifest.jsonl")
    summary = {}
    for r in rows:
        k = (r["split"], r["kind"])
        summary.setdefault(k, [0, 0.0])
        summary[k][0] += 1
        summary[k][1] += r["duration"]
    for (split, kind), (n, d) in sorted(summary.items()):
        LOG.info("%-8s %-10s %5d clips %7.1f min", split, kind, n, d / 60)
    return rows


def read_manifest(corpus: Path | str, splits=("train",)) -> list[dict]:
    corpus = Path(corpus)
    rows = [json.loads(line) for line in open(corpus / "manifest.jsonl")]
    return [r for r in rows if r["split"] in splits]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="prepare-corpus", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="corpus folder (default: %(default)s)")
    ap.add_argument("--synth-minutes", type=float, default=120.0, help="synthetic speech to generate (about)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="parallel TTS processes")
    ap.add_argument("--no-synth", action="store_true", help="real speech only")
    ap.add_argument("--no-games", action="store_true",
                    help="leave out the game dialogue (training/game_speech.py: two freeware games in Debian)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if shutil.which("sox") is None:
        LOG.error("sox not found: run scripts/install_train_deps.sh")
        return 2
    build(Path(a.out), a.synth_minutes, a.seed, a.jobs, a.no_synth, not a.no_games)
    return 0


if __name__ == "__main__":
    sys.exit(main())
