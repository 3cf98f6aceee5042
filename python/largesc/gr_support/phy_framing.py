"""The packet PHY's link framing: type bytes, sizes, overhead, and the parameter checks its
blocks share (packet_phy_framer/deframer/tx/rx, packet_phy; the design is in packet_phy.py)."""

import numpy as np
import pmt
from gnuradio import digital

from . import params as P

LEN_TAG = "packet_len"
ACCESS_CODE = digital.packet_utils.default_access_code        # 64 bits
TYPE_DATA, TYPE_EOS, TYPE_SYNC, TYPE_FEEDBACK = 0, 1, 2, 3
CRC_BYTES = 4
HEADER_BYTES = len(ACCESS_CODE) // 8 + 4                      # access code + 16-bit length x 2
from .ports import EOS_SIM, FAIL, FEEDBACK, LINK_DONE, POSTAMBLE, PREAMBLE  # noqa: F401, E402 - re-exported

MAX_PACKET_BYTES = 1400                # the PHY's length field has 12 bits; UDP keeps under the MTU
SYNC_PAYLOAD = bytes([TYPE_SYNC]) + bytes(range(0x30, 0x38))


MAX_SPS = 64
MIN_SAMP_RATE, MAX_SAMP_RATE = 1.0, 1e9                     # Hz (0: from UHD's rx_rate tag)
MAX_AMBLE = 64                         # preamble / postamble bytes
MAX_PADDING = 100000                   # guard samples
MAX_EOS_COPIES = 16


def check_snr(block, snr_db):
    return P.check_float(block, "snr_db", snr_db, -30.0, 100.0, what="dB")


def check_freq_offset(block, freq_offset):
    return P.check_float(block, "freq_offset", freq_offset, -0.5, 0.5, lo_open=True, hi_open=True,
                         what="cycles per sample")


def check_taps(block, taps):
    """A non-empty sequence of finite (complex) numbers, not all zero -> list of complex."""
    import numbers
    what = "a non-empty list of finite numbers, not all zero"
    if isinstance(taps, (str, bytes)) or not hasattr(taps, "__len__") or len(taps) == 0:
        P.fail(block, "taps", what, taps)
    out = []
    for t in taps:
        if isinstance(t, bool) or not isinstance(t, numbers.Number):
            P.fail(block, "taps", what, taps)
        c = complex(t)
        if not (np.isfinite(c.real) and np.isfinite(c.imag)):
            P.fail(block, "taps", what, taps)
        out.append(c)
    if not any(out):
        P.fail(block, "taps", what, taps)
    return out


def _check_framing(block, preamble_bytes, postamble_bytes, eos_copies, eos_grace_s):
    return (P.check_int(block, "preamble_bytes", preamble_bytes, 1, MAX_AMBLE),
            P.check_int(block, "postamble_bytes", postamble_bytes, 1, MAX_AMBLE),
            P.check_int(block, "eos_copies", eos_copies, 1, MAX_EOS_COPIES),
            P.check_float(block, "eos_grace_s", eos_grace_s, 0.0, P.MAX_GRACE_S, what="s"))


def crc32_args():
    """CRC-32 (IEEE 802.3 / zlib) in crc_append / crc_check argument order (without the flags
    that differ between the two)."""
    return (32, 0x04C11DB7, 0xFFFFFFFF, 0xFFFFFFFF, True, True, False)


def noise_voltage(snr_db):
    """channel_model noise voltage for an SNR per sample (unit-power GMSK, unit-energy taps)."""
    return float(10.0 ** (-float(snr_db) / 20.0))


def overhead(preamble_bytes=4, postamble_bytes=2, sps=2, pre_padding=32, post_padding=64):
    """PHY overhead per packet: {'bits': framing bits, 'guard_symbols': zero guard in symbols}."""
    nbytes = preamble_bytes + HEADER_BYTES + 1 + CRC_BYTES + postamble_bytes
    return {"bits": 8 * nbytes, "guard_symbols": (pre_padding + post_padding) / sps}


def _u8pdu(data, meta=None):
    return pmt.cons(pmt.make_dict() if meta is None else meta, pmt.init_u8vector(len(data), list(data)))
