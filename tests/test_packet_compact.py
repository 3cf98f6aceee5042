"""Compact packet formats (compact, compact_crc): round trips, sizes, hostile input, doc example."""
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnuradio.largesc.core.link import packet as P
from gnuradio.largesc.core.link import packet_compact as C
from gnuradio.largesc.core.link.frames import FRAME_RATE
from gnuradio.largesc.core.link.packet_formats import FORMATS, get_format

DOC = Path(__file__).resolve().parents[1] / "docs" / "packet-format.md"
COMPACT = [get_format("compact"), get_format("compact_crc")]
tok = st.integers(0, 2047)
frame_st = st.tuples(st.integers(0, P.MAX_N), st.integers(0, P.MAX_R)).flatmap(
    lambda nr: st.builds(lambda a, b: P.PacketFrame(tuple(a), tuple(b)),
                         st.lists(tok, min_size=nr[0], max_size=nr[0]),
                         st.lists(tok, min_size=nr[1], max_size=nr[1])))


@pytest.mark.parametrize("fmt", COMPACT, ids=lambda f: f.name)
@pytest.mark.parametrize("n", range(P.MAX_N + 1))
@pytest.mark.parametrize("r", range(P.MAX_R + 1))
def test_roundtrip_every_allocation(fmt, n, r):
    frame = P.PacketFrame(tuple(range(2047, 2047 - n, -1)), tuple(range(r)))
    data = fmt.pack(3, C.SEQ_MOD - 1, [frame])
    assert fmt.unpack(data) == P.Packet(0, C.SEQ_MOD - 1, (frame,))     # no epoch on air
    b = fmt.bit_budget([(n, r)])
    assert 8 * len(data) == b["total_bits"]
    assert b["header_bits"] == 12 <= 16 and b["crc_bits"] == (8 if fmt.has_crc else 0)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(COMPACT), st.integers(0, C.SEQ_MOD - 1), frame_st)
def test_roundtrip_random(fmt, seq, frame):
    assert fmt.unpack(fmt.pack(0, seq, [frame])) == P.Packet(0, seq, (frame,))


def test_on_air_rates_at_550_and_1100():
    """Payload + header + CRC + pad = on air; compact at B = 550 stays <= 750 bps."""
    rates = {}
    for name in FORMATS:
        for n in (4, 8):
            b = get_format(name).bit_budget([(n, 0)])
            assert b["payload_bits"] + b["header_bits"] + b["crc_bits"] + b["pad_bits"] == b["total_bits"]
            rates[name, n] = b["total_bits"] * FRAME_RATE
    assert rates == {("v1", 4): 1000.0, ("v1", 8): 1500.0, ("compact", 4): 700.0,
                     ("compact", 8): 1300.0, ("compact_crc", 4): 800.0, ("compact_crc", 8): 1400.0}
    assert rates["compact", 4] <= 750


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(COMPACT), st.binary(max_size=40))
def test_garbage_raises_only_packet_error(fmt, data):
    try:
        pkt = fmt.unpack(data)
    except P.PacketError as exc:
        assert exc.reason in {"length", "crc", "range", "padding", "type"}
    else:                                          # what parses re-encodes to the same bytes
        assert fmt.pack(0, pkt.seq, pkt.frames) == data


@settings(max_examples=200, deadline=None)
@given(frame_st, st.data())
def test_single_bit_flip_detected_with_crc(frame, data):
    fmt = get_format("compact_crc")
    pkt = bytearray(fmt.pack(0, 7, [frame]))
    bit = data.draw(st.integers(0, 8 * len(pkt) - 1))
    pkt[bit // 8] ^= 0x80 >> (bit % 8)
    with pytest.raises(P.PacketError):
        fmt.unpack(bytes(pkt))


def test_length_and_range_rules():
    fmt = get_format("compact")
    for bad in (b"", b"\x00", b"\x00" * 4):         # 32 - 12 = 20 bits: 1 token + 9 bits: no
        with pytest.raises(P.PacketError, match="length"):
            fmt.unpack(bad)
    with pytest.raises(P.PacketError, match="range"):   # R = 7 but one token only
        fmt.unpack(bytes([0x00, 0x70, 0x00]))
    with pytest.raises(P.PacketError, match="padding"):
        fmt.unpack(bytes([0x00, 0x01]))
    with pytest.raises(ValueError):                 # one frame per packet only
        fmt.pack(0, 1, [P.PacketFrame((1,), ())] * 2)
    with pytest.raises(ValueError):
        P.Packetizer(d=2, fpp=2, fmt=fmt)


def test_packetizer_wraps_at_512():
    fmt = get_format("compact")
    pz = P.Packetizer(d=1, fmt=fmt, seq0=C.SEQ_MOD - 1)
    seqs = [fmt.unpack(pz.push([5] * 8, 4, 0)).seq for _ in range(3)]
    assert seqs == [C.SEQ_MOD - 1, 0, 1]
    assert pz.counters["payload_bits"] == 3 * 44 and pz.counters["overhead_bits"] == 3 * 12


def _doc_examples():
    text = DOC.read_text()
    out = {}
    for m in re.finditer(r"<!-- example-(compact\w*)-fields: (.*?) -->\s*<!-- example-\1-bytes -->"
                         r"\s*```\s*([0-9a-fA-F ]+?)\s*```", text):
        f = json.loads(m.group(2))
        frames = tuple(P.PacketFrame(tuple(a), tuple(b)) for a, b in f["frames"])
        out[m.group(1)] = (bytes.fromhex(m.group(3)), P.Packet(0, f["seq"], frames))
    return out


def test_documented_examples_decode():
    ex = _doc_examples()
    assert set(ex) == {"compact", "compact_crc"}, "docs/packet-format.md lacks a compact example"
    for name, (data, expected) in ex.items():
        fmt = get_format(name)
        assert fmt.unpack(data) == expected
        assert fmt.pack(0, expected.seq, expected.frames) == data


def test_blocks_carry_the_format_through():
    """The controller packs with it (and reports it); the depacketizer parses with it."""
    import numpy as np

    from gnuradio.largesc.adaptive_controller import adaptive_controller
    from gnuradio.largesc.depacketizer import depacketizer
    from gnuradio.largesc.gr_support.pdu import eos_pdu, make_pdu
    ctl = adaptive_controller(bandwidth_bps=550, packet_format="compact")
    data = ctl._allocate_and_pack(np.arange(8, dtype=np.int32), -20.0)
    assert len(data) == 7 and get_format("compact").unpack(data).seq == 0      # 56 bits at B = 550
    assert ctl.get_stats()["packet_format"] == "compact"
    dep = depacketizer(packet_format="compact")
    dep.handle_pdu(make_pdu(data, {}))
    dep.handle_pdu(make_pdu(b"\x00", {}))                 # too short for any compact packet
    dep.handle_pdu(eos_pdu(2, 0))
    st = dep.get_stats()
    assert st["accepted"] == 1 and st["bad_length"] == 1 and st["frames_out"] == 2
    assert dep._tokens[0][:4] == (0, 1, 2, 3)
