"""Compact packet format for narrow links: 12-bit header, one frame per packet, optional CRC-8.

Layout (bits, MSB first; ``docs/packet-format.md`` has the diagram and why these widths)::

    seq:9  R:3  tokens: N originals of frame seq, then R copies of frame seq - d, 11 bit each
    pad: zero bits up to a byte boundary        [crc: 8 bit CRC-8/AUTOSAR, format compact_crc]

N is not sent: the token count N + R follows from the packet length, because 11-bit tokens are
longer than the at most 7 pad bits (``t = (bits - 12) // 11``, the remainder must be < 8). There
is no version, no epoch and no extension: both ends are configured with the format (as with d),
and a packet carries exactly one frame. Without the CRC the link below must check frames (the
GMSK PHY's CRC-32, UDP's checksum); with it (``compact_crc``) the format fits an unchecked link.
The parser raises :class:`PacketError` (never anything else) on any byte string it refuses.
"""
from typing import Sequence, Tuple

from .frames import BITS_PER_TOKEN, CODEBOOK_SIZE
from .packet import MAX_N, MAX_R, Packet, PacketError, PacketFrame, crc8

SEQ_BITS = 9                    # frame index mod 512: 41 s wrap, jumps up to 255 frames unambiguous
SEQ_MOD = 1 << SEQ_BITS
R_BITS = 3                      # copies 0..7
HEADER_BITS = SEQ_BITS + R_BITS         # 12
CRC_BITS = 8
_TOKEN_MASK = CODEBOOK_SIZE - 1


def bit_budget(allocs: Sequence[Tuple[int, int]], crc: bool = False) -> dict:
    """Bits of a one-frame compact packet with (N, R) = allocs[0]: payload, header, crc, pad, total."""
    if len(allocs) != 1:
        raise ValueError("the compact format carries exactly one frame per packet")
    n, r = allocs[0]
    payload = BITS_PER_TOKEN * (n + r)
    pad = -(HEADER_BITS + payload) % 8
    crc_bits = CRC_BITS if crc else 0
    return {"payload_bits": payload, "header_bits": HEADER_BITS, "crc_bits": crc_bits,
            "pad_bits": pad, "total_bits": HEADER_BITS + payload + pad + crc_bits}


def pack(seq: int, frame: PacketFrame, crc: bool = False) -> bytes:
    """Encode one packet. Raises ValueError on out-of-range fields (a sender bug, not input)."""
    n, r = len(frame.tokens), len(frame.copies)
    if n > MAX_N or r > MAX_R:
        raise ValueError(f"N={n} R={r} out of range")
    if not 0 <= seq < SEQ_MOD:
        raise ValueError(f"seq must be in 0..{SEQ_MOD - 1}")
    v = seq << R_BITS | r
    for t in frame.tokens + frame.copies:
        if not 0 <= t < CODEBOOK_SIZE:
            raise ValueError(f"token {t} out of range")
        v = v << BITS_PER_TOKEN | t
    nbits = HEADER_BITS + BITS_PER_TOKEN * (n + r)
    pad = -nbits % 8
    body = (v << pad).to_bytes((nbits + pad) // 8, "big")
    return body + bytes((crc8(body),)) if crc else body


def unpack(data: bytes, crc: bool = False) -> Packet:
    """Decode and validate one packet (epoch is always 0). Raises PacketError only."""
    try:
        data = bytes(data)
    except Exception as exc:                                  # noqa: BLE001 - hostile input
        raise PacketError("type", type(data).__name__) from exc
    if crc:
        if len(data) < 3:
            raise PacketError("length", f"{len(data)} bytes")
        if crc8(data[:-1]) != data[-1]:
            raise PacketError("crc")
        data = data[:-1]
    if len(data) < 2:
        raise PacketError("length", f"{len(data)} bytes")
    nbits = 8 * len(data)
    ntok, pad = divmod(nbits - HEADER_BITS, BITS_PER_TOKEN)
    if pad >= 8:
        raise PacketError("length", f"{len(data)} bytes is no whole number of tokens")
    v = int.from_bytes(data, "big")
    if v & ((1 << pad) - 1):
        raise PacketError("padding")
    pos = nbits - HEADER_BITS
    seq, r = v >> (pos + R_BITS), (v >> pos) & ((1 << R_BITS) - 1)
    n = ntok - r
    if not 0 <= n <= MAX_N:
        raise PacketError("range", f"{ntok} tokens with R={r}")
    toks = []
    for _ in range(ntok):
        pos -= BITS_PER_TOKEN
        toks.append((v >> pos) & _TOKEN_MASK)
    return Packet(0, seq, (PacketFrame(tuple(toks[:n]), tuple(toks[n:])),))
