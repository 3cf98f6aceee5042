"""German speech for the evaluation: Debian's ``asterisk-prompt-de`` (Beronet GmbH / 8hertz GmbH,
GPL-2; GSM-coded 8 kHz IVR prompts, one speaker no model here trained on).

Debian 12 no longer ships the package; trixie does. The .deb is downloaded from the Debian pool
(no apt, no root), checked against its pinned sha256, and unpacked in Python (a .deb is an ar
archive holding data.tar.*) into the evaluation cache. The prompts are decoded with sox.
"""
from __future__ import annotations

import hashlib
import io
import logging
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)
PACKAGE, VERSION = "asterisk-prompt-de", "2.0-1.3"
DEB = f"{PACKAGE}_{VERSION}_all.deb"
DEB_SHA256 = "08ba6e284c2fd325b04adff884a269851b9d914ba6f8d671886e92432b8d292d"
LICENCE = "GPL-2 (Beronet GmbH / 8hertz GmbH; Debian asterisk-prompt-de)"
URLS = (f"http://deb.debian.org/debian/pool/main/a/{PACKAGE}/{DEB}",
        f"https://snapshot.debian.org/archive/debian/20250101T000000Z/pool/main/a/{PACKAGE}/{DEB}")
SOUNDS = "usr/share/asterisk/sounds/de/"


def _download(dst: Path, timeout_s: float) -> None:
    errors = []
    for url in URLS:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as r:
                dst.write_bytes(r.read())
            return
        except OSError as exc:
            errors.append(f"{url}: {exc}")
    raise OSError("; ".join(errors))


def _ar_members(data: bytes) -> dict:
    """{name: bytes} of a Unix ar archive (the .deb container)."""
    if not data.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    out, i = {}, 8
    while i + 60 <= len(data):
        head = data[i:i + 60]
        name = head[:16].decode().strip().rstrip("/")
        size = int(head[48:58].decode().strip())
        out[name] = data[i + 60:i + 60 + size]
        i += 60 + size + (size & 1)
    return out


def _unpack(deb: Path, dst: Path) -> None:
    """The package's sounds/de/*.gsm into dst."""
    members = _ar_members(deb.read_bytes())
    name = next((n for n in members if n.startswith("data.tar")), None)
    if name is None:
        raise ValueError(f"{deb}: no data.tar member")
    dst.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(members[name])) as tf:
        for m in tf.getmembers():
            path = m.name.lstrip("./")
            if m.isfile() and path.startswith(SOUNDS) and path.endswith(".gsm") and "/" not in path[len(SOUNDS):]:
                (dst / Path(path).name).write_bytes(tf.extractfile(m).read())


def prompts_dir(cache: Path, timeout_s: float = 300.0) -> Path | None:
    """The unpacked prompts (``*.gsm``), fetched on first use; None (logged) when unavailable."""
    root = Path(cache) / "src" / PACKAGE
    sounds = root / "sounds-de"
    if sounds.is_dir() and any(sounds.glob("*.gsm")):
        return sounds
    root.mkdir(parents=True, exist_ok=True)
    deb = root / DEB
    try:
        if not deb.is_file() or hashlib.sha256(deb.read_bytes()).hexdigest() != DEB_SHA256:
            _download(deb, timeout_s)
        if hashlib.sha256(deb.read_bytes()).hexdigest() != DEB_SHA256:
            log.warning("%s: sha256 mismatch, German clips skipped", deb)
            deb.unlink()
            return None
        _unpack(deb, sounds)
    except (OSError, ValueError, tarfile.TarError) as exc:
        log.warning("could not fetch %s %s (%s): German clips skipped", PACKAGE, VERSION, exc)
        return None
    return sounds if any(sounds.glob("*.gsm")) else None


def clips(cache: Path, n: int, min_s: float = 2.0, max_s: float = 8.0, seed: int = 0) -> list[tuple]:
    """n prompts of min_s..max_s seconds, a seeded choice from the sorted list: [(name, audio, 8000)].
    Decoded with sox (libsox's GSM 06.10); [] (logged) when the package or sox is unavailable; a
    prompt sox cannot read is skipped."""
    import numpy as np

    from ..core.audio_io import read_wav
    d = prompts_dir(cache)
    if d is None:
        return []
    if shutil.which("sox") is None:
        log.warning("sox missing (apt-get install sox): German clips skipped")
        return []
    pool = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in sorted(d.glob("*.gsm")):
            w = Path(tmp) / (f.stem + ".wav")
            try:
                subprocess.run(["sox", "-V1", str(f), "-b", "16", "-e", "signed-integer", str(w)], check=True,
                               timeout=60, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            except (OSError, subprocess.SubprocessError) as exc:
                log.warning("sox could not read %s (%s): skipped", f.name, exc)
                continue
            x, rate = read_wav(w)
            if min_s <= len(x) / rate <= max_s:
                pool.append((f.stem, x, rate))
    if not pool:
        return []
    pick = sorted(np.random.default_rng(seed).choice(len(pool), min(n, len(pool)), replace=False))
    return [pool[i] for i in pick]
