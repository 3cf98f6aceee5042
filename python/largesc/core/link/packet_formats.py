"""The packet formats a session can use, behind one interface (docs/packet-format.md).

- ``v1``: 24-bit header (version, epoch, sequence 12 bit, N and R, optional multi-frame
  extension) + CRC-8: for several frames per packet, or where restarts must be told apart;
- ``compact`` (the default): 12-bit header (sequence 9 bit, R), one frame per packet, no CRC:
  for links that already check frames (the packet erasure channel, the GMSK PHY's CRC-32,
  UDP's checksum);
- ``compact_crc``: the compact header plus the CRC-8, for narrow links without a frame check.

Both ends of a session must be configured with the same format (as with d): no field tells one
format from another. :func:`get_format` returns a :class:`PacketFormat` with ``pack``,
``unpack`` (raises PacketError only), ``bit_budget``, ``seq_mod``, ``max_fpp`` and ``has_epoch``.
"""
from dataclasses import dataclass
from typing import Sequence, Tuple

from . import packet as v1
from . import packet_compact as compact
from .packet import Packet, PacketFrame

DEFAULT_FORMAT = "compact"
FORMATS = ("v1", "compact", "compact_crc")


@dataclass(frozen=True)
class PacketFormat:
    name: str
    seq_mod: int                # sequence numbers wrap at this value
    max_fpp: int                # frames per packet the format can carry
    has_epoch: bool             # sender restarts are told apart by an epoch field
    has_crc: bool

    def pack(self, epoch: int, seq: int, frames: Sequence[PacketFrame]) -> bytes:
        if self.name == "v1":
            return v1.pack(epoch, seq, frames)
        if len(frames) != 1:
            raise ValueError(f"the {self.name} format carries exactly one frame per packet")
        return compact.pack(seq, frames[0], crc=self.has_crc)

    def unpack(self, data) -> Packet:
        if self.name == "v1":
            return v1.unpack(data)
        return compact.unpack(data, crc=self.has_crc)

    def bit_budget(self, allocs: Sequence[Tuple[int, int]]) -> dict:
        if self.name == "v1":
            return v1.bit_budget(allocs)
        return compact.bit_budget(allocs, crc=self.has_crc)


_FORMATS = {
    "v1": PacketFormat("v1", v1.SEQ_MOD, v1.MAX_FPP, True, True),
    "compact": PacketFormat("compact", compact.SEQ_MOD, 1, False, False),
    "compact_crc": PacketFormat("compact_crc", compact.SEQ_MOD, 1, False, True),
}


def get_format(name) -> PacketFormat:
    """The format called `name` (one of FORMATS); a PacketFormat passes through."""
    if isinstance(name, PacketFormat):
        return name
    try:
        return _FORMATS[name]
    except (KeyError, TypeError):
        raise ValueError(f"packet format must be one of {', '.join(FORMATS)}, got {name!r}") from None
