"""German speech for the evaluation: Debian's ``asterisk-prompt-de`` (Beronet GmbH / 8hertz GmbH,
GPL-2; GSM-coded 8 kHz IVR prompts, one speaker no model here trained on).

Debian 12 no longer ships the package; trixie does. It is fetched with a private apt configuration
(the system's apt sources and packages are left alone, no root needed), checked against its
sha256, and unpacked with ``dpkg-deb -x`` into the evaluation cache.
"""
from __future__ import annotations

import getpass
import hashlib
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)
PACKAGE, VERSION = "asterisk-prompt-de", "2.0-1.3"
DEB = f"{PACKAGE}_{VERSION}_all.deb"
DEB_SHA256 = "08ba6e284c2fd325b04adff884a269851b9d914ba6f8d671886e92432b8d292d"
LICENCE = "GPL-2 (Beronet GmbH / 8hertz GmbH; Debian asterisk-prompt-de)"
SUITE = "trixie"


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _download(dst: Path, timeout_s: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for d in ("lists/partial", "cache/archives/partial"):
            (t / d).mkdir(parents=True)
        (t / "sources.list").write_text("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
                                        f"http://deb.debian.org/debian {SUITE} main\n")
        opts = [f"-oDir::Etc::SourceList={t}/sources.list", "-oDir::Etc::SourceParts=/dev/null",
                f"-oDir::State::Lists={t}/lists", f"-oDir::Cache={t}/cache",
                "-oDir::State::status=/var/lib/dpkg/status", "-oDebug::NoLocking=1",
                f"-oAPT::Sandbox::User={getpass.getuser()}"]
        run = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout_s)
        subprocess.run(["apt-get", *opts, "-qq", "update"], **run)
        subprocess.run(["apt-get", *opts, "-qq", "download", f"{PACKAGE}={VERSION}"], cwd=t, **run)
        shutil.copyfile(t / DEB, dst)


def prompts_dir(cache: Path, timeout_s: float = 300.0) -> Path | None:
    """The unpacked ``sounds/de`` folder (``*.gsm``), fetched on first use; None when unavailable."""
    root = Path(cache) / "src" / PACKAGE
    sounds = root / "x" / "usr" / "share" / "asterisk" / "sounds" / "de"
    if sounds.is_dir() and any(sounds.glob("*.gsm")):
        return sounds
    root.mkdir(parents=True, exist_ok=True)
    deb = root / DEB
    try:
        if not deb.is_file() or _sha256(deb) != DEB_SHA256:
            _download(deb, timeout_s)
        if _sha256(deb) != DEB_SHA256:
            log.warning("%s: sha256 mismatch, German clips skipped", deb)
            deb.unlink()
            return None
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root / "x")], check=True, timeout=timeout_s)
    except (OSError, subprocess.SubprocessError) as exc:
        err = getattr(exc, "stderr", b"") or b""
        log.warning("could not fetch %s from Debian %s (%s %s): German clips skipped", PACKAGE, SUITE, exc,
                    err.decode(errors="replace")[-200:])
        return None
    return sounds if sounds.is_dir() else None


def clips(cache: Path, n: int, min_s: float = 2.0, max_s: float = 8.0, seed: int = 0) -> list[tuple]:
    """n prompts of min_s..max_s seconds, a seeded choice from the sorted list: [(name, audio, 8000)].
    Decoded with sox (libsox's GSM 06.10); [] when the package or sox is unavailable."""
    import numpy as np

    from ..core.audio_io import read_wav
    d = prompts_dir(cache)
    if d is None or shutil.which("sox") is None:
        if d is not None:
            log.warning("sox missing (apt-get install sox): German clips skipped")
        return []
    pool = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in sorted(d.glob("*.gsm")):
            w = Path(tmp) / (f.stem + ".wav")
            subprocess.run(["sox", "-V1", str(f), "-b", "16", "-e", "signed-integer", str(w)], check=True,
                           timeout=60)
            x, rate = read_wav(w)
            if min_s <= len(x) / rate <= max_s:
                pool.append((f.stem, x, rate))
    pick = sorted(np.random.default_rng(seed).choice(len(pool), min(n, len(pool)), replace=False))
    return [pool[i] for i in pick]
