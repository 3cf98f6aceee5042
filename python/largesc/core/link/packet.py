"""Packet format v1: header, MSB-first 11-bit tokens, CRC-8 (see docs/packet-format.md).

Layout of one packet (bits, MSB first; ``docs/packet-format.md`` has the diagram)::

    ver:2  epoch:2  ext:1  seq:12  nr:7   [ext: fpp-1:3 rsv:5, then nr:7 per extra frame]
    tokens: per frame, N originals of that frame then R copies of frame (index - d), 11 bit each
    pad: zero bits up to a byte boundary
    crc: 8 bit CRC-8/AUTOSAR (poly 0x2F, init 0xFF, xorout 0xFF) over all bytes before it

``nr = 8 * N + R`` with N in 0..8 (codebooks of the frame sent) and R in 0..7 (codebooks 0..R-1
of frame index-d repeated). The parser treats every byte as hostile: it checks length, version,
ranges, padding and CRC and raises :class:`PacketError` (never anything else) on any violation.
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from .frames import BITS_PER_TOKEN, CODEBOOK_SIZE, NUM_CODEBOOKS

VERSION = 1
SEQ_BITS = 12
SEQ_MOD = 1 << SEQ_BITS
EPOCH_BITS = 2
EPOCH_MOD = 1 << EPOCH_BITS
MAX_N = NUM_CODEBOOKS           # originals per frame: 0..8
MAX_R = NUM_CODEBOOKS - 1       # copies per frame: 0..7 (last acoustic codebook never repeated)
MAX_FPP = 8                     # frames per packet with the extension byte
HEADER_BITS = 2 + EPOCH_BITS + 1 + SEQ_BITS + 7      # 24: fixed header
EXT_BITS = 8                    # extension byte (only when frames per packet > 1)
NR_BITS = 7                     # one (N, R) field per extra frame
CRC_BITS = 8
_TOKEN_MASK = CODEBOOK_SIZE - 1


class PacketError(ValueError):
    """A byte string that is not a valid v1 packet; `reason` is a short counter key."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def _crc8_table(poly: int = 0x2F):
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc8_table()


def crc8(data: bytes) -> int:
    """CRC-8/AUTOSAR (poly 0x2F, init 0xFF, xorout 0xFF); crc8(b"123456789") == 0xDF."""
    crc = 0xFF
    table = _CRC_TABLE
    for b in data:
        crc = table[crc ^ b]
    return crc ^ 0xFF


@dataclass(frozen=True)
class PacketFrame:
    """One frame's share of a packet: its own codebooks 0..N-1 and copies of frame index-d."""
    tokens: Tuple[int, ...]     # originals, len N
    copies: Tuple[int, ...]     # codebooks 0..R-1 of frame (index - d), len R


@dataclass(frozen=True)
class Packet:
    """A decoded v1 packet. Frame j of the packet is frame number seq + j (mod 4096)."""
    epoch: int
    seq: int
    frames: Tuple[PacketFrame, ...]


def bit_budget(allocs: Sequence[Tuple[int, int]]) -> dict:
    """Bits of a packet carrying frames with (N, R) in `allocs`: payload, header, crc, pad, total.

    Payload is token bits only; header + crc + pad are the overhead reported beside it.
    """
    header = HEADER_BITS + (EXT_BITS + NR_BITS * (len(allocs) - 1) if len(allocs) > 1 else 0)
    payload = BITS_PER_TOKEN * sum(n + r for n, r in allocs)
    pad = -(header + payload) % 8
    return {"payload_bits": payload, "header_bits": header, "crc_bits": CRC_BITS,
            "pad_bits": pad, "total_bits": header + payload + pad + CRC_BITS}


def pack(epoch: int, seq: int, frames: Sequence[PacketFrame]) -> bytes:
    """Encode one packet. Raises ValueError on out-of-range fields (a sender bug, not input)."""
    if not 1 <= len(frames) <= MAX_FPP:
        raise ValueError(f"frames per packet must be in 1..{MAX_FPP}")
    if not 0 <= epoch < EPOCH_MOD or not 0 <= seq < SEQ_MOD:
        raise ValueError("epoch or seq out of range")
    nrs = []
    for f in frames:
        n, r = len(f.tokens), len(f.copies)
        if n > MAX_N or r > MAX_R:
            raise ValueError(f"N={n} R={r} out of range")
        nrs.append(8 * n + r)
    ext = 1 if len(frames) > 1 else 0
    v = (((VERSION << EPOCH_BITS | epoch) << 1 | ext) << SEQ_BITS | seq) << 7 | nrs[0]
    nbits = HEADER_BITS
    if ext:
        v = v << 8 | (len(frames) - 1) << 5
        for nr in nrs[1:]:
            v = v << 7 | nr
        nbits += EXT_BITS + NR_BITS * (len(frames) - 1)
    for f in frames:
        for t in f.tokens:
            if not 0 <= t < CODEBOOK_SIZE:
                raise ValueError(f"token {t} out of range")
            v = v << 11 | t
        for t in f.copies:
            if not 0 <= t < CODEBOOK_SIZE:
                raise ValueError(f"token {t} out of range")
            v = v << 11 | t
        nbits += 11 * (len(f.tokens) + len(f.copies))
    pad = -nbits % 8
    body = (v << pad).to_bytes((nbits + pad) // 8, "big")
    return body + bytes((crc8(body),))


def unpack(data: bytes) -> Packet:
    """Decode and validate one packet. Raises PacketError (only) on any invalid input."""
    try:
        data = bytes(data)
    except Exception as exc:                                  # noqa: BLE001 - hostile input
        raise PacketError("type", type(data).__name__) from exc
    size = len(data)
    if size < 4:
        raise PacketError("length", f"{size} bytes")
    if crc8(data[:-1]) != data[-1]:
        raise PacketError("crc")
    v = int.from_bytes(data[:-1], "big")
    nbits = 8 * (size - 1)
    ver = v >> (nbits - 2)
    if ver != VERSION:
        raise PacketError("version", str(ver))
    pos = nbits - 2                                           # bits left to read
    epoch = (v >> (pos - 2)) & 3
    ext = (v >> (pos - 3)) & 1
    seq = (v >> (pos - 15)) & (SEQ_MOD - 1)
    nrs = [(v >> (pos - 22)) & 0x7F]
    pos -= 22
    if ext:
        if pos < 8:
            raise PacketError("length", "extension")
        e = (v >> (pos - 8)) & 0xFF
        pos -= 8
        if e & 0x1F:
            raise PacketError("reserved")
        count = (e >> 5) + 1
        if count < 2:
            raise PacketError("range", "ext with one frame")
        if pos < 7 * (count - 1):
            raise PacketError("length", "extension")
        for _ in range(count - 1):
            nrs.append((v >> (pos - 7)) & 0x7F)
            pos -= 7
    ntok = 0
    for nr in nrs:
        if nr >> 3 > MAX_N:
            raise PacketError("range", f"N={nr >> 3}")
        ntok += (nr >> 3) + (nr & 7)
    need = 11 * ntok
    if not 0 <= pos - need < 8:
        raise PacketError("length", f"{size} bytes for {ntok} tokens")
    if v & ((1 << (pos - need)) - 1):
        raise PacketError("padding")
    frames = []
    for nr in nrs:
        n, r = nr >> 3, nr & 7
        toks = []
        for _ in range(n + r):
            pos -= 11
            toks.append((v >> pos) & _TOKEN_MASK)
        frames.append(PacketFrame(tuple(toks[:n]), tuple(toks[n:])))
    return Packet(epoch, seq, tuple(frames))


class Packetizer:
    """Sender side: keeps sequence, epoch and the last d frames, and builds packets.

    `push(tokens, n_send, n_repeat)` takes frame n (8 tokens), sends codebooks 0..N-1 of it
    and repeats codebooks 0..R-1 of frame n-d (R <= N_{n-d}, checked). With `fpp` > 1 frames are
    grouped; `push` returns bytes when a packet is complete, else None; `flush()` emits a
    partial packet. Counters: packets, frames, payload_bits, overhead_bits.
    `fmt`: a core.link.packet_formats.PacketFormat (None: this module's v1 format).
    """

    def __init__(self, d: int = 1, epoch: int = 0, fpp: int = 1, seq0: int = 0, fmt=None):
        self.fmt = fmt
        self._seq_mod = SEQ_MOD if fmt is None else fmt.seq_mod
        max_fpp = MAX_FPP if fmt is None else fmt.max_fpp
        if not 1 <= fpp <= max_fpp:
            raise ValueError(f"fpp must be in 1..{max_fpp}")
        if d < fpp:
            raise ValueError("d must be >= frames per packet (copies never share a packet "
                             "with their original)")
        self.d, self.fpp = int(d), int(fpp)
        self.epoch = int(epoch) % EPOCH_MOD
        self.frame_index = int(seq0)                # absolute index of the next frame
        self._history = {}                          # index -> (tokens, n_send)
        self._group = []
        self._group_seq = 0
        self.counters = {"packets": 0, "frames": 0, "payload_bits": 0, "overhead_bits": 0}

    def push(self, tokens: Sequence[int], n_send: int, n_repeat: int) -> Optional[bytes]:
        n = self.frame_index
        n_send, n_repeat = int(n_send), int(n_repeat)
        if not 0 <= n_send <= MAX_N or not 0 <= n_repeat <= MAX_R:
            raise ValueError(f"N={n_send} R={n_repeat} out of range")
        toks = tuple(map(int, tokens[:NUM_CODEBOOKS]))
        prev = self._history.get(n - self.d)
        if n_repeat > (prev[1] if prev else 0):
            raise ValueError(f"R={n_repeat} exceeds N of frame n-d")
        copies = prev[0][:n_repeat] if n_repeat else ()
        self._history[n] = (toks, n_send)
        self._history.pop(n - self.d, None)
        if not self._group:
            self._group_seq = n % self._seq_mod
        self._group.append(PacketFrame(toks[:n_send], copies))
        self.frame_index += 1
        self.counters["frames"] += 1
        return self.flush() if len(self._group) >= self.fpp else None

    def flush(self) -> Optional[bytes]:
        """Emit the frames collected so far as one packet (None if there are none)."""
        if not self._group:
            return None
        allocs = [(len(f.tokens), len(f.copies)) for f in self._group]
        if self.fmt is None:
            pkt, budget = pack(self.epoch, self._group_seq, self._group), bit_budget(allocs)
        else:
            pkt = self.fmt.pack(self.epoch, self._group_seq, self._group)
            budget = self.fmt.bit_budget(allocs)
        self._group = []
        self.counters["packets"] += 1
        self.counters["payload_bits"] += budget["payload_bits"]
        self.counters["overhead_bits"] += budget["total_bits"] - budget["payload_bits"]
        return pkt
