"""Real speech from two freeware games in Debian main, for the `mini` codec's training and its
held-out test set.

* ``flight-of-the-amazon-queen`` (1.0.0-9, about 4.6 h, many actors): ``queen.1c`` is a ``QTBL``
  table (7-byte version, a features byte, a compression byte, a big-endian u16 count, then 21-byte
  entries: name (12), bundle (1), offset (u32 BE), size (u32 BE)); the ``*.SB`` entries are MPEG
  layer III at 11.025 kHz. Names are ``RRRDDDSn.SB`` (hex digits): dialogue file RRRDDD, speaker letter S (J is
  Joe, the hero; any other letter the character that file's dialogue is with), line n; ``JOE*``
  and ``C*`` (cut scenes) are whole characters of their own.
* ``drascula`` (1.0+ds4-2, about 0.8 h): ``en/*.ALS`` raw unsigned 8-bit 11025 Hz mono; a letter
  prefix names the speaker (``D`` Drascula, ``VB`` Von Braun, ``I`` Igor, ...), bare numbers are
  the hero's.

Both are band-limited to 5.5 kHz (11 kHz sampling). Licences: freeware with redistribution and
modification allowed (each package's copyright file); the audio is converted here and never
committed. Whole characters are held out (HELDOUT_* below) for the codec's unseen-speaker test.

The .deb files are fetched with ``apt-get download`` into ``<cache>/src/games`` (no root
install, nothing of the games is installed system-wide).
"""
from __future__ import annotations

import logging
import re
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

LOG = logging.getLogger("largesc.game_speech")
QUEEN_PKG = "flight-of-the-amazon-queen"
DRASCULA_PKG = "drascula"
QUEEN_DATA = "usr/share/scummvm/flight-of-the-amazon-queen/queen.1c"
DRASCULA_DIR = "usr/share/scummvm/drascula/en"
LICENCE = "freeware, redistribution and modification allowed (Debian main; see the package's copyright)"
# Characters never used for training (the unseen-speaker test set of the codec).
HELDOUT_QUEEN = ("120P", "570P", "480P", "590P", "250P", "240P")
HELDOUT_DRASCULA = ("VB", "I")


def fetch_debs(dst: Path) -> dict[str, Path]:
    """The two .deb files, downloaded once into dst (apt-get download; apt-get update first if needed)."""
    dst.mkdir(parents=True, exist_ok=True)
    out = {}
    for pkg in (QUEEN_PKG, DRASCULA_PKG):
        found = sorted(dst.glob(f"{pkg}_*.deb"))
        if not found:
            for attempt in range(2):
                r = subprocess.run(["apt-get", "download", pkg], cwd=dst, capture_output=True, text=True)
                if r.returncode == 0:
                    break
                subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
            found = sorted(dst.glob(f"{pkg}_*.deb"))
        if found:
            out[pkg] = found[-1]
        else:
            LOG.warning("could not download %s: game speech from it skipped", pkg)
    return out


def extract_deb(deb: Path, dst: Path) -> Path:
    if not (dst / "usr").is_dir():
        dst.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(dst)], check=True)
    return dst


def queen_entries(data: bytes) -> list[tuple[str, int, int]]:
    """(name, offset, size) of every entry in a queen.1c resource table."""
    if data[:4] != b"QTBL":
        raise ValueError("not a QTBL resource file")
    (count,) = struct.unpack(">H", data[13:15])
    out = []
    for i in range(count):
        e = data[15 + 21 * i: 36 + 21 * i]
        name = e[:12].split(b"\0")[0].decode("latin-1")
        off, size = struct.unpack(">II", e[13:21])
        out.append((name, off, size))
    return out


def queen_speaker(name: str) -> str:
    """Character of a speech entry: JOE / C<nn> (cut scenes) whole, else <dialogue file><letter>
    (J -> Joe)."""
    stem = name.rsplit(".", 1)[0]
    if stem.startswith("JOE"):
        return "JOE"
    if stem.startswith("C"):
        return stem[:3]
    m = re.match(r"([0-9A-F]{3})[0-9A-F]{3}([A-Z])[0-9A-Z]$", stem)
    if not m:
        return stem[:3]
    return "JOE" if m.group(2) == "J" else m.group(1) + m.group(2)


def drascula_speaker(stem: str) -> str:
    m = re.match(r"([A-Z]*)\d+$", stem)
    return (m.group(1) or "HERO") if m else stem


def _rows(out: Path, items, source: str, held: tuple, to_24k) -> list[dict]:
    rows = []
    for key, speaker, write in items:
        dst = out / "wav" / "games" / source / speaker / f"{key}.wav"
        try:
            if not dst.exists():
                with tempfile.TemporaryDirectory() as tmp:
                    src = write(Path(tmp))
                    dur = to_24k(str(src), dst)
            else:
                from .corpus import wav_duration
                dur = wav_duration(dst)
        except (subprocess.CalledProcessError, OSError, ValueError) as e:
            LOG.warning("%s %s skipped: %s", source, key, e)
            continue
        if dur < 0.4:
            continue
        rows.append(dict(path=str(dst.relative_to(out)), duration=round(dur, 3), speaker=f"{source}_{speaker}",
                         source=source, licence=LICENCE, split="heldout" if speaker in held else "train",
                         lang="en", text="", kind="real", band="5.5k"))
    return rows


def game_rows(out: Path, cache_src: Path, to_24k) -> list[dict]:
    """Convert the games' speech into out/wav/games/ (skipping what is there); manifest rows."""
    debs = fetch_debs(cache_src / "games")
    rows: list[dict] = []
    if QUEEN_PKG in debs:
        root = extract_deb(debs[QUEEN_PKG], cache_src / "games" / "x-queen")
        data = (root / QUEEN_DATA).read_bytes()

        def queen_items():
            for name, off, size in queen_entries(data):
                if not name.endswith(".SB"):
                    continue

                def write(tmp, off=off, size=size):
                    p = tmp / "x.mp3"
                    p.write_bytes(data[off:off + size])
                    return p
                yield name[:-3], queen_speaker(name), write
        rows += _rows(out, queen_items(), "queen", HELDOUT_QUEEN, to_24k)
    if DRASCULA_PKG in debs:
        root = extract_deb(debs[DRASCULA_PKG], cache_src / "games" / "x-drascula")

        def drascula_items():
            for f in sorted((root / DRASCULA_DIR).glob("*.ALS")):
                def write(tmp, f=f):
                    from .corpus import write_wav
                    x = (np.frombuffer(f.read_bytes(), np.uint8).astype(np.float32) - 128.0) / 128.0
                    p = tmp / "x.wav"
                    write_wav(p, x, 11025)
                    return p
                yield f.stem, drascula_speaker(f.stem), write
        rows += _rows(out, drascula_items(), "drascula", HELDOUT_DRASCULA, to_24k)
    return rows
