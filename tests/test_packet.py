"""Packet format v1: round trips for every allocation, sizes, hostile input, the doc example."""
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnuradio.largesc.core.link import packet as P
from gnuradio.largesc.core.link.frames import BITS_PER_TOKEN

DOC = Path(__file__).resolve().parents[1] / "docs" / "packet-format.md"
tok = st.integers(0, 2047)


def frame_strategy():
    return st.tuples(st.integers(0, P.MAX_N), st.integers(0, P.MAX_R)).flatmap(
        lambda nr: st.builds(lambda a, b: P.PacketFrame(tuple(a), tuple(b)),
                             st.lists(tok, min_size=nr[0], max_size=nr[0]),
                             st.lists(tok, min_size=nr[1], max_size=nr[1])))


def test_crc_check_value():
    assert P.crc8(b"123456789") == 0xDF            # CRC-8/AUTOSAR catalogue check value


@pytest.mark.parametrize("n", range(P.MAX_N + 1))
@pytest.mark.parametrize("r", range(P.MAX_R + 1))
def test_roundtrip_every_allocation(n, r):
    frame = P.PacketFrame(tuple(range(2047, 2047 - n, -1)), tuple(range(r)))
    data = P.pack(3, 4095, [frame])
    assert P.unpack(data) == P.Packet(3, 4095, (frame,))
    assert 8 * len(data) == P.bit_budget([(n, r)])["total_bits"]


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 3), st.integers(0, 4095), st.lists(frame_strategy(), min_size=1, max_size=8))
def test_roundtrip_random(epoch, seq, frames):
    data = P.pack(epoch, seq, frames)
    assert P.unpack(data) == P.Packet(epoch, seq, tuple(frames))
    b = P.bit_budget([(len(f.tokens), len(f.copies)) for f in frames])
    assert b["payload_bits"] == BITS_PER_TOKEN * sum(len(f.tokens) + len(f.copies) for f in frames)
    assert 8 * len(data) == b["total_bits"] and 0 <= b["pad_bits"] < 8


def test_header_bits_reported_beside_payload():
    b = P.bit_budget([(4, 0)])
    assert (b["payload_bits"], b["header_bits"], b["crc_bits"]) == (44, 24, 8)
    assert b["total_bits"] == 80                   # 10 bytes for a 550 bps frame


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_garbage_raises_only_packet_error(data):
    try:
        P.unpack(data)
    except P.PacketError as exc:
        assert exc.reason in {"length", "crc", "version", "range", "reserved", "padding", "type"}


@settings(max_examples=200, deadline=None)
@given(frame_strategy(), st.data())
def test_single_bit_flip_detected(frame, data):
    pkt = bytearray(P.pack(1, 7, [frame]))
    bit = data.draw(st.integers(0, 8 * len(pkt) - 1))
    pkt[bit // 8] ^= 0x80 >> (bit % 8)
    with pytest.raises(P.PacketError):
        P.unpack(bytes(pkt))


def test_truncated_and_extended_rejected():
    data = P.pack(0, 1, [P.PacketFrame((1, 2, 3, 4), ())])
    for bad in (data[:-1], data + b"\0", data[:3]):
        with pytest.raises(P.PacketError):
            P.unpack(bad)


def test_packetizer_copies_frame_n_minus_d():
    pz = P.Packetizer(d=2, epoch=1)
    frames = [[10 * i + k for k in range(8)] for i in range(4)]
    out = [P.unpack(pz.push(frames[i], 6, 3 if i >= 2 else 0)) for i in range(4)]
    assert out[2].frames[0].copies == tuple(frames[0][:3])
    assert out[3].frames[0].copies == tuple(frames[1][:3])
    assert [p.seq for p in out] == [0, 1, 2, 3]
    with pytest.raises(ValueError):                 # R may not exceed N of frame n-d
        pz.push(frames[0], 4, 7)


def test_packetizer_rejects_copy_in_same_packet():
    with pytest.raises(ValueError):
        P.Packetizer(d=1, fpp=2)


def _doc_example():
    text = DOC.read_text()
    m = re.search(r"<!-- example-bytes -->\s*```\s*([0-9a-fA-F ]+?)\s*```", text)
    assert m, "docs/packet-format.md has no example-bytes block"
    f = json.loads(re.search(r"<!-- example-fields: (.*?) -->", text).group(1))
    frames = tuple(P.PacketFrame(tuple(a), tuple(b)) for a, b in f["frames"])
    return bytes.fromhex(m.group(1)), P.Packet(f["epoch"], f["seq"], frames)


def test_documented_example_decodes():
    data, expected = _doc_example()
    assert P.unpack(data) == expected
    assert P.pack(expected.epoch, expected.seq, expected.frames) == data
