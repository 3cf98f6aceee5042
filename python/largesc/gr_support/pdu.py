"""PMT helpers shared by the packet blocks: PDU parsing and end-of-stream marks.

Not a block. The end-of-stream mark is a PDU with metadata ``eos`` = True, ``n_frames`` (frames
the sender produced) and ``epoch``, and an empty payload; the packet blocks pass it on and the
depacketizer flushes on it.
"""
import pmt

from .ports import CTRL, DONE, FEEDBACK, PDUS, STATS, SYSTEM  # noqa: F401 - the blocks import them from here


class BadMessage(Exception):
    """A message that is not a usable PDU; `reason` is the counter key."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def parse_pdu(msg):
    """(meta dict or {}, payload bytes) from a u8 PDU, or raise BadMessage."""
    if not pmt.is_pair(msg):
        raise BadMessage("not_pdu")
    meta, vec = pmt.car(msg), pmt.cdr(msg)
    if not pmt.is_u8vector(vec):
        raise BadMessage("not_u8vector")
    if pmt.is_null(meta):
        meta_d = {}
    elif pmt.is_dict(meta):
        try:
            meta_d = pmt.to_python(meta)
        except Exception:                                   # noqa: BLE001 - hostile input
            raise BadMessage("bad_meta")
        if not isinstance(meta_d, dict):
            raise BadMessage("bad_meta")
    else:
        raise BadMessage("bad_meta")
    n = pmt.length(vec)
    data = bytes(pmt.u8vector_elements(vec)) if n else b""
    return meta_d, data


def make_pdu(data: bytes, meta: dict) -> "pmt.pmt_t":
    """gr-pdu style PDU: (meta dict . u8vector). Metadata values: Python values or PMTs."""
    d = pmt.make_dict()
    for k, v in meta.items():
        d = pmt.dict_add(d, pmt.intern(k), v if isinstance(v, pmt.pmt_base) else pmt.to_pmt(v))
    return pmt.cons(d, pmt.init_u8vector(len(data), list(data)))


def is_eos(meta: dict) -> bool:
    return meta.get("eos") is True


def eos_pdu(n_frames: int, epoch: int) -> "pmt.pmt_t":
    return make_pdu(b"", {"eos": True, "n_frames": int(n_frames), "epoch": int(epoch)})


def eos_frames(meta: dict):
    """`n_frames` of an eos mark if it is a non-negative int, else None."""
    n = meta.get("n_frames")
    return n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else None
