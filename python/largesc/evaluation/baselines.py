"""Baseline codecs with packet loss from the common slot trace.

- Opus (ctypes on the system libopus.so.0, Debian bookworm 1.3.1): 16 kHz, VOIP, 20 ms packets,
  VBR, complexity 10, lowest practical bitrate (6 kbps by default), in-band FEC on with the
  packet-loss hint set to the condition's p; on loss the decoder uses LBRR from the next packet
  when it arrived, else its PLC (1.3.1 has no deep PLC and no DRED). Decode logic as opus_demo.c.
- Opus 1.5.2 with DRED (ctypes on the libopus 1.5.2 inside liblargesc_opus_dnn.so, built by
  scripts/build_opus_dnn.sh): as above without LBRR, Deep REDundancy of up to 1 s in every packet,
  decoder complexity 10 (deep PLC); after a gap the next packet's DRED fills the lost frames,
  else deep PLC (opus_demo.c 1.5.2's logic). DRED takes its bits out of the encoder's total
  (libopus compute_dred_bitrate: nothing below 12 kbps; at 16 kbps none on the bundled clip), so
  this baseline runs at 20 kbps.
- AAC-LC (PyAV / FFmpeg's native encoder): 16 kHz, 1024-sample (64 ms) packets, 8 kbps
  requested (the encoder's floor is about 9.5 kbps); FFmpeg's decoder has no PLC, so a lost packet
  is zero-filled.
- Codec 2 700C / 1300 / 3200 (ctypes on Debian libcodec2 1.0): 8 kHz, 40 / 40 / 20 ms frames,
  one frame per packet; a lost frame decodes the last received frame's bits again (repeat).

Every function takes int16-range float audio at 16 kHz and a LossTrace and returns
(y float32 at 16 kHz, info dict with payload_bps, packet_ms, packets, lost).
"""
from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

from ..core.audio_io import resample

FS = 16000


def _i16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(x, np.float64) * 32767.0), -32768, 32767).astype(np.int16)


# ----------------------------------------------------------------------------- Opus
_OPUS = None
OPUS_VOIP = 2048
_SET_BITRATE, _SET_VBR, _SET_COMPLEXITY, _SET_INBAND_FEC, _SET_PLP = 4002, 4006, 4010, 4012, 4014
_GET_LOOKAHEAD, _GET_LAST_PACKET_DURATION, _SET_DRED_DURATION = 4027, 4039, 4050
_OPUS15 = None


def _opus():
    global _OPUS
    if _OPUS is None:
        _OPUS = _bind(ctypes.CDLL(ctypes.util.find_library("opus") or "libopus.so.0"))
    return _OPUS


def _opus15():
    """libopus 1.5.2 (with DRED) from the project's opus-dnn build."""
    global _OPUS15
    if _OPUS15 is None:
        from ..core.codec.opus_dnn import _lib
        lib = _bind(_lib())
        P, I = ctypes.c_void_p, ctypes.c_int
        lib.opus_dred_decoder_create.restype = P
        lib.opus_dred_decoder_create.argtypes = [ctypes.POINTER(I)]
        lib.opus_dred_alloc.restype = P
        lib.opus_dred_alloc.argtypes = [ctypes.POINTER(I)]
        lib.opus_dred_parse.argtypes = [P, P, ctypes.c_char_p, I, I, I, ctypes.POINTER(I), I]
        lib.opus_decoder_dred_decode.argtypes = [P, P, I, ctypes.POINTER(ctypes.c_short), I]
        lib.opus_packet_has_lbrr.argtypes = [ctypes.c_char_p, I]
        lib.opus_dred_free.argtypes = [P]
        lib.opus_dred_decoder_destroy.argtypes = [P]
        if not lib.opus_get_version_string().decode().startswith("libopus 1.5"):
            raise RuntimeError(f"opus-dnn library is {lib.opus_get_version_string().decode()}, not 1.5")
        _OPUS15 = lib
    return _OPUS15


def _bind(lib):
    """The encode/decode API's ctypes signatures (the same in 1.3 and 1.5)."""
    P, I = ctypes.c_void_p, ctypes.c_int
    lib.opus_get_version_string.restype = ctypes.c_char_p
    lib.opus_encoder_create.restype = P
    lib.opus_encoder_create.argtypes = [I, I, I, ctypes.POINTER(I)]
    lib.opus_decoder_create.restype = P
    lib.opus_decoder_create.argtypes = [I, I, ctypes.POINTER(I)]
    lib.opus_encode.argtypes = [P, ctypes.POINTER(ctypes.c_short), I, ctypes.c_char_p, I]
    lib.opus_decode.argtypes = [P, ctypes.c_char_p, I, ctypes.POINTER(ctypes.c_short), I, I]
    lib.opus_encoder_destroy.argtypes = [P]
    lib.opus_decoder_destroy.argtypes = [P]
    return lib


def opus_version() -> str:
    return _opus().opus_get_version_string().decode()


def _opus_encode(lib, x: np.ndarray, bitrate: int, p_hint: float, fec: bool, frame_ms: int,
                 dred_frames: int = 0) -> tuple[list, int, int]:
    """(packets, encoder look-ahead in samples, samples per packet)."""
    P, I = ctypes.c_void_p, ctypes.c_int
    err = I(0)
    enc = lib.opus_encoder_create(FS, 1, OPUS_VOIP, ctypes.byref(err))
    if err.value:
        raise RuntimeError(f"opus_encoder_create failed ({err.value})")
    ctl = lib.opus_encoder_ctl
    try:
        for req, val in ((_SET_BITRATE, int(bitrate)), (_SET_COMPLEXITY, 10), (_SET_VBR, 1),
                         (_SET_INBAND_FEC, int(fec)), (_SET_PLP, int(round(100 * p_hint)))) + \
                (((_SET_DRED_DURATION, dred_frames),) if dred_frames else ()):
            if ctl(P(enc), I(req), I(val)) != 0:
                raise RuntimeError(f"opus_encoder_ctl({req}, {val}) failed")
        la = I(0)
        ctl(P(enc), I(_GET_LOOKAHEAD), ctypes.byref(la))
        n = FS * frame_ms // 1000
        xpad = np.concatenate([x, np.zeros(n + la.value, np.int16)])
        buf = ctypes.create_string_buffer(1500)
        packets = []
        for i in range(len(xpad) // n):
            fr = np.ascontiguousarray(xpad[i * n:(i + 1) * n])
            nb = lib.opus_encode(P(enc), fr.ctypes.data_as(ctypes.POINTER(ctypes.c_short)), n, buf, 1500)
            if nb <= 0:
                raise RuntimeError(f"opus_encode failed ({nb})")
            packets.append(buf.raw[:nb])
    finally:
        lib.opus_encoder_destroy(P(enc))
    return packets, la.value, n


def _opus_info(packets, lost, frame_ms, lib, **counts) -> dict:
    return {"payload_bps": sum(len(p) for p in packets) * 8 / (len(packets) * frame_ms / 1000.0),
            "packet_ms": frame_ms, "packets": len(packets), "lost": int(lost.sum()), **counts,
            "library": lib.opus_get_version_string().decode()}


def _opus_decode(lib, dec, packets: list, lost: np.ndarray, n: int, conceal) -> list:
    """opus_demo.c's receive loop: a lost packet waits for the next one that arrives, then
    `conceal(data, f, gap, ptr)` fills frame f of the gap of `gap` frames (the arrived packet's
    `data` may carry FEC or DRED for them) and returns the samples decoded; then `data` itself.
    A loss at the very end is concealed with the last packet's data."""
    P = ctypes.c_void_p
    pcm = np.zeros(5760, np.int16)
    ptr = pcm.ctypes.data_as(ctypes.POINTER(ctypes.c_short))
    out, pending = [], 0
    for i in range(len(packets)):
        if lost[i] and i < len(packets) - 1:
            pending += 1
            continue
        data = packets[i]
        for f in range(pending):
            k = conceal(data, f, pending, ptr)
            out.append(pcm[:max(k, 0)].copy())
        pending = 0
        k = lib.opus_decode(P(dec), data, len(data), ptr, 5760, 0)
        out.append(pcm[:max(k, 0)].copy())
    return out


def opus(x16: np.ndarray, trace, bitrate: int = 6000, p_hint: float = 0.0, fec: bool = True,
         frame_ms: int = 20) -> tuple[np.ndarray, dict]:
    lib = _opus()
    P = ctypes.c_void_p
    x = _i16(x16)
    packets, la, n = _opus_encode(lib, x, bitrate, p_hint, fec, frame_ms)
    err = ctypes.c_int(0)
    dec = lib.opus_decoder_create(FS, 1, ctypes.byref(err))
    if err.value:
        raise RuntimeError(f"opus_decoder_create failed ({err.value})")
    lost = trace.mask(len(packets), frame_ms)
    count = {"concealed_fec": 0, "concealed_plc": 0}

    def conceal(data, f, gap, ptr):       # LBRR of the next packet for the last lost frame, else PLC
        if f == gap - 1 and fec:
            count["concealed_fec"] += 1
            return lib.opus_decode(P(dec), data, len(data), ptr, n, 1)
        count["concealed_plc"] += 1
        return lib.opus_decode(P(dec), None, 0, ptr, n, 0)
    out = _opus_decode(lib, dec, packets, lost, n, conceal)
    lib.opus_decoder_destroy(P(dec))
    y = np.concatenate(out)[la:la + len(x)].astype(np.float32) / 32768.0
    return y, _opus_info(packets, lost, frame_ms, lib, **count)


def opus_dred(x16: np.ndarray, trace, bitrate: int = 20000, p_hint: float = 0.0, dred_ms: int = 1000,
              frame_ms: int = 20) -> tuple[np.ndarray, dict]:
    """Opus 1.5.2 with Deep REDundancy (module docstring); decode as opus_demo.c 1.5.2."""
    lib = _opus15()
    P, I = ctypes.c_void_p, ctypes.c_int
    x = _i16(x16)
    packets, la, n = _opus_encode(lib, x, bitrate, p_hint, False, frame_ms, dred_frames=dred_ms // 10)
    err = I(0)
    dec = lib.opus_decoder_create(FS, 1, ctypes.byref(err))
    dred_dec = lib.opus_dred_decoder_create(ctypes.byref(err))
    dred = lib.opus_dred_alloc(ctypes.byref(err))
    if err.value or not dec or not dred_dec or not dred:
        raise RuntimeError(f"opus DRED decoder setup failed ({err.value})")
    if lib.opus_decoder_ctl(P(dec), I(_SET_COMPLEXITY), I(10)) != 0:        # deep PLC
        raise RuntimeError("opus decoder refused complexity 10 (deep PLC)")
    lost = trace.mask(len(packets), frame_ms)
    count = {"concealed_dred": 0, "concealed_plc": 0}
    avail = [0]

    def conceal(data, f, gap, ptr):       # the gap from the arrived packet's DRED, else deep PLC
        if f == 0:
            end = I(0)
            ret = lib.opus_dred_parse(P(dred_dec), P(dred), data, len(data), min(48000, gap * n), FS,
                                      ctypes.byref(end), 0)
            if ret < 0:          # e.g. OPUS_UNIMPLEMENTED: DRED models missing; never pass it off as DRED
                raise RuntimeError(f"opus_dred_parse failed ({ret})")
            avail[0] = ret
        offset = (gap - f) * n
        if avail[0] > 0:
            # approximate count: DRED's own coverage (dred_end) is not taken into account
            count["concealed_dred" if offset <= avail[0] else "concealed_plc"] += 1
            return lib.opus_decoder_dred_decode(P(dec), P(dred), offset, ptr, n)
        count["concealed_plc"] += 1
        return lib.opus_decode(P(dec), None, 0, ptr, n, 0)
    out = _opus_decode(lib, dec, packets, lost, n, conceal)
    lib.opus_dred_free(P(dred))
    lib.opus_dred_decoder_destroy(P(dred_dec))
    lib.opus_decoder_destroy(P(dec))
    y = np.concatenate(out)[la:la + len(x)].astype(np.float32) / 32768.0
    return y, _opus_info(packets, lost, frame_ms, lib, **count)


# ----------------------------------------------------------------------------- AAC-LC
def aac(x16: np.ndarray, trace, bitrate: int = 8000) -> tuple[np.ndarray, dict]:
    import av
    enc = av.CodecContext.create("aac", "w")
    enc.sample_rate = FS
    enc.layout = "mono"
    enc.format = "fltp"
    enc.bit_rate = int(bitrate)
    n = 1024
    x = np.asarray(x16, np.float32)
    packets = []
    for i in range(0, len(x), n):
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[i:i + n])[None, :], format="fltp", layout="mono")
        fr.sample_rate = FS
        packets += list(enc.encode(fr))
    packets += list(enc.encode(None))
    dec = av.CodecContext.create("aac", "r")
    dec.sample_rate = FS
    dec.layout = "mono"
    dec.extradata = enc.extradata
    lost = trace.mask(len(packets), 1000.0 * n / FS)
    out = []
    for pk, l in zip(packets, lost):
        if l:
            out.append(np.zeros(n, np.float32))
            continue
        got = False
        for f in dec.decode(pk):
            out.append(f.to_ndarray()[0].astype(np.float32))
            got = True
        if not got:
            out.append(np.zeros(n, np.float32))
    y = np.concatenate(out) if out else np.zeros(0, np.float32)
    dur = len(x) / FS
    info = {"payload_bps": sum(p.size for p in packets) * 8 / dur, "packet_ms": 1000.0 * n / FS,
            "packets": len(packets), "lost": int(lost.sum()), "library": f"PyAV {av.__version__} aac"}
    return y, info


# ----------------------------------------------------------------------------- Codec 2
C2_MODES = {"3200": 0, "2400": 1, "1600": 2, "1400": 3, "1300": 4, "1200": 5, "700C": 8, "450": 10}
_C2_COPY = None


def _c2_open():
    """A fresh instance of libcodec2. Its decoder draws random phases from a process-global
    generator (codec2_rand: a static seed with no reset), so every call loads a private copy of
    the library and unloads it afterwards: each decode starts from the same generator state and
    results do not depend on what ran before in the process."""
    global _C2_COPY
    import os
    import shutil
    import tempfile
    if _C2_COPY is None or not os.path.exists(_C2_COPY):
        src = ctypes.util.find_library("codec2") or "libcodec2.so.1.0"
        if not os.path.isabs(src):
            for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"):
                if os.path.exists(os.path.join(d, src)):
                    src = os.path.join(d, src)
                    break
        fd, _C2_COPY = tempfile.mkstemp(prefix="largesc-codec2-", suffix=".so")
        os.close(fd)
        shutil.copyfile(src, _C2_COPY)
        import atexit
        atexit.register(lambda path=_C2_COPY: os.path.exists(path) and os.remove(path))
    lib = ctypes.CDLL(_C2_COPY)
    P = ctypes.c_void_p
    lib.codec2_create.restype = P
    lib.codec2_create.argtypes = [ctypes.c_int]
    for f in ("codec2_bits_per_frame", "codec2_samples_per_frame", "codec2_bytes_per_frame"):
        getattr(lib, f).argtypes = [P]
        getattr(lib, f).restype = ctypes.c_int
    lib.codec2_encode.argtypes = [P, ctypes.c_char_p, ctypes.POINTER(ctypes.c_short)]
    lib.codec2_decode.argtypes = [P, ctypes.POINTER(ctypes.c_short), ctypes.c_char_p]
    lib.codec2_destroy.argtypes = [P]
    return lib


def _c2_close(lib) -> None:
    import _ctypes
    _ctypes.dlclose(lib._handle)


def codec2(x16: np.ndarray, trace, mode: str = "1300") -> tuple[np.ndarray, dict]:
    lib = _c2_open()
    ctypes.CDLL(None).srand(1)      # in case the library draws from libc's rand()
    x8 = _i16(resample(np.asarray(x16, np.float32), FS, 8000))
    c2 = lib.codec2_create(C2_MODES[mode])
    n = lib.codec2_samples_per_frame(c2)
    nb = lib.codec2_bytes_per_frame(c2)
    bpf = lib.codec2_bits_per_frame(c2)
    frame_ms = 1000.0 * n / 8000
    nfr = -(-len(x8) // n)
    x8 = np.concatenate([x8, np.zeros(nfr * n - len(x8), np.int16)])
    lost = trace.mask(nfr, frame_ms)
    out = np.zeros(nfr * n, np.int16)
    buf = ctypes.create_string_buffer(nb)
    o = np.zeros(n, np.int16)
    optr = o.ctypes.data_as(ctypes.POINTER(ctypes.c_short))
    last = None
    for i in range(nfr):
        fr = np.ascontiguousarray(x8[i * n:(i + 1) * n])
        lib.codec2_encode(c2, buf, fr.ctypes.data_as(ctypes.POINTER(ctypes.c_short)))
        o[:] = 0
        if lost[i]:
            if last is not None:
                lib.codec2_decode(c2, optr, last)
        else:
            bits = buf.raw
            lib.codec2_decode(c2, optr, bits)
            last = bits
        out[i * n:(i + 1) * n] = o
    lib.codec2_destroy(c2)
    _c2_close(lib)
    y = resample(out.astype(np.float32) / 32768.0, 8000, FS)[:len(x16)]
    info = {"payload_bps": bpf * 1000.0 / frame_ms, "packet_ms": frame_ms, "packets": nfr,
            "lost": int(lost.sum()), "library": "libcodec2 (Debian) ctypes"}
    return y, info
