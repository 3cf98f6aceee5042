"""Text side channel (core.link.text, the controller's text budget): packets in every format,
hostile input, reassembly, the call sign schedule, speech + text within B (docs/text-channel.md)."""
import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnuradio.largesc.core.link import text as T
from gnuradio.largesc.core.link.controller import AdaptiveController
from gnuradio.largesc.core.link.packet import MAX_N, MAX_R, PacketError, PacketFrame
from gnuradio.largesc.core.link.packet_formats import FORMATS, get_format

DOC = Path(__file__).resolve().parents[1] / "docs" / "text-channel.md"
ALL = [get_format(f) for f in FORMATS]


def test_crc16_check_value():
    assert T.crc16(b"123456789") == 0x29B1


@pytest.mark.parametrize("fmt", ALL, ids=lambda f: f.name)
@pytest.mark.parametrize("k", range(1, T.CHUNK_BYTES + 1))
def test_roundtrip_every_chunk_size(fmt, k):
    for kind, msg_id, index, last in [(0, 0, 0, 0), (2, 15, 31, 31), (1, 7, 5, 20)]:
        c = T.Chunk(kind, msg_id, index, last, bytes(range(250, 250 - k, -1)))
        data = T.pack_chunk(c, fmt)
        assert T.is_text(data, fmt)
        assert T.unpack_chunk(data, fmt) == c
        assert 8 * len(data) == T.chunk_bits(c, fmt)["total_bits"]
        with pytest.raises(PacketError):
            fmt.unpack(data)                            # never a voice packet


@pytest.mark.parametrize("fmt", ALL, ids=lambda f: f.name)
def test_no_voice_packet_looks_like_text(fmt):
    for n in range(MAX_N + 1):
        for r in range(MAX_R + 1):
            for seq in (0, 1, 300, fmt.seq_mod - 1):
                frame = PacketFrame(tuple([2047] * n), tuple([2047] * r))
                assert not T.is_text(fmt.pack(1 if fmt.has_epoch else 0, seq, [frame]), fmt)


def test_documented_example_decodes():
    doc = DOC.read_text()
    f = json.loads(re.search(r"<!-- text-example-fields: (.*?) -->", doc).group(1))
    chunk = T.Chunk(f["kind"], f["msg_id"], f["index"], f["last"], bytes.fromhex(f["data"]))
    assert T.split_message(T.CALLSIGN, 5, b"N0CALL") == [chunk]
    for name in ("v1", "compact"):
        m = re.search(rf"<!-- text-example-{name} -->\s*```\s*([0-9a-fA-F ]+?)\s*```", doc)
        data = bytes.fromhex(m.group(1))
        assert T.unpack_chunk(data, get_format(name)) == chunk
        assert T.pack_chunk(chunk, get_format(name)) == data


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(ALL), st.binary(max_size=40))
def test_hostile_bytes_raise_packet_error_only(fmt, data):
    try:
        T.unpack_chunk(data, fmt)
    except PacketError:
        pass


@pytest.mark.parametrize("fmt", [f for f in ALL if f.has_crc], ids=lambda f: f.name)
def test_bit_flips_in_checked_formats_are_refused(fmt):
    """Formats with a CRC refuse every single-bit flip (compact relies on the link's check)."""
    data = T.pack_chunk(T.Chunk(0, 3, 1, 2, b"abcdefgh"), fmt)
    for bit in range(8 * len(data)):
        bad = bytearray(data)
        bad[bit // 8] ^= 0x80 >> (bit % 8)
        if T.is_text(bytes(bad), fmt):
            with pytest.raises(PacketError):
                T.unpack_chunk(bytes(bad), fmt)


def _chunks(kind, msg_id, text):
    return T.split_message(kind, msg_id, text.encode())


def test_partial_message_is_never_shown_and_repeats_complete_it():
    rx = T.TextReceiver()
    chunks = _chunks(T.TEXT, 1, "a message that needs several chunks of eight bytes")
    assert len(chunks) > 3
    for c in chunks[:-1]:
        assert rx.push(c) is None
    for c in chunks[:2]:                                # a repeat: still not whole
        assert rx.push(c) is None
    m = rx.push(chunks[-1])
    assert m == T.Message(T.TEXT, 1, "a message that needs several chunks of eight bytes")
    for c in chunks:                                     # the whole repeat: shown once only
        assert rx.push(c) is None
    assert rx.counters["text_messages"] == 1 and rx.counters["text_repeats"] == 1


def test_mixed_messages_with_one_id_fail_the_crc():
    rx = T.TextReceiver()
    a, b = _chunks(T.TEXT, 4, "first message, same id"), _chunks(T.TEXT, 4, "other message, same id")
    assert len(a) == len(b)
    for c in a[:-1]:
        rx.push(c)
    assert rx.push(b[-1]) is None
    assert rx.counters["text_bad_crc"] == 1 and rx.counters["text_messages"] == 0


def test_valid_crc_over_invalid_utf8_is_counted():
    data = b"\xff\xfe"
    body = data + T.crc16(bytes((0, 2)) + data).to_bytes(2, "big")
    rx = T.TextReceiver()
    assert rx.push(T.Chunk(0, 2, 0, 0, body)) is None
    assert rx.counters["text_bad_utf8"] == 1


def test_hostile_chunk_streams_never_raise():
    rng = random.Random(5)
    rx = T.TextReceiver()
    for _ in range(20000):
        last = rng.randrange(32)
        rx.push(T.Chunk(rng.randrange(3), rng.randrange(16), rng.randrange(last + 1), last,
                        bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))))
    assert len(rx._partial) <= rx.max_partial
    assert rx.counters["text_messages"] <= rx.counters["text_bad_crc"] + rx.counters["text_chunks"]


@pytest.mark.parametrize("bad, match", [
    ("x" * 201, "1..200 UTF-8 bytes"), ("", "1..200"), (b"\xc3\x28", "valid UTF-8"),
    ("bell\x07", "printable"), (42, "a string"), ("é" * 101, "got 202")])
def test_bad_text_is_a_clear_error(bad, match):
    with pytest.raises(ValueError, match=match):
        T.TextSender().submit(bad)


@pytest.mark.parametrize("bad", ["N0 CALL", "x" * 17, "DL1ABC\n", 7])
def test_bad_callsign_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="callsign must be"):
        T.TextSender(callsign=bad)


def test_text_up_to_200_bytes_round_trips():
    s, rx = T.TextSender(), T.TextReceiver()
    text = "ä" * 100
    s.submit(text)
    got = [rx.push(s.pop()) for _ in range(T.MAX_CHUNKS) if s.head_tokens()]
    assert [m.text for m in got if m] == [text]


def test_callsign_schedule_start_repeats_and_period():
    s = T.TextSender("DL1ABC", period_frames=10, start_repeats=4)
    sent = []
    for frame in range(35):
        s.tick(frame)
        if frame % 2 == 0 and s.head_tokens():
            sent.append((frame, s.pop().kind))
    assert [f for f, k in sent if k == T.CALLSIGN][:4] == [0, 2, 4, 6]
    assert any(f >= 10 for f, _ in sent) and any(f >= 30 for f, _ in sent)
    eoo = s.end_of_over()
    assert len(eoo) == 3 and {c.kind for c in eoo} == {T.END_OF_OVER}
    assert s.end_of_over_tokens() == sum(T.chunk_tokens(c) for c in eoo)


@pytest.mark.parametrize("fmt", ALL, ids=lambda f: f.name)
@pytest.mark.parametrize("bandwidth, dtx", [(550.0, True), (1100.0, False), (1100.0, True), (2062.5, False)])
def test_speech_and_text_stay_within_b(fmt, bandwidth, dtx):
    """Text always waiting (call sign + long messages), speech and silence at random: every
    window of `window` frames and the whole over stay within B, end of over included."""
    rng = random.Random(int(bandwidth) + dtx)
    ctl = AdaptiveController(bandwidth, window=25, d=1, dtx=dtx, text_share=0.05)
    s = T.TextSender("DL1ABC", period_frames=30)
    for i in range(20):
        s.submit(f"message {i}: " + "x" * rng.randrange(1, 60))
    per_frame, text_frames = [], 0
    n_frames = 600
    for frame in range(n_frames):
        ctl.reserve_text(s.end_of_over_tokens())
        s.tick(frame)
        speech = rng.random() < 0.7
        a = ctl.step(0.0, 0.1, importance=0.9 if speech else 0.1, text_tokens=s.head_tokens())
        if a.text_tokens:
            assert a.text_tokens == s.head_tokens()
            assert T.chunk_bits(s.pop(), fmt)["payload_bits"] <= 11 * a.text_tokens
            text_frames += 1
        per_frame.append(a.tokens + a.text_tokens)
    cap = int(ctl.budget_tokens * 25 + 1e-9)
    assert max(sum(per_frame[i:i + 25]) for i in range(n_frames - 24)) <= cap
    eoo = sum(T.chunk_tokens(c) for c in s.end_of_over() if ctl.spend_text(T.chunk_tokens(c)))
    assert eoo == s.end_of_over_tokens()                 # paid for from the start
    total_bits = (sum(per_frame) + eoo) * 11
    assert total_bits <= n_frames * ctl.budget_tokens * 11 + 1e-6
    if bandwidth > 550:          # at 550 the window keeps 4 tokens for every frame: text waits
        assert text_frames > 20 and s.counters["text_payload_bits"] > 0
    assert ctl.counters["text_tokens"] == sum(per_frame) - ctl.counters["tokens"] + eoo


def test_no_text_leaves_the_allocation_unchanged():
    rng = random.Random(1)
    a, b = AdaptiveController(1100.0, dtx=True), AdaptiveController(1100.0, dtx=True, text_share=0.2)
    for _ in range(300):
        imp = rng.random()
        assert a.step(0.0, 0.2, importance=imp) == b.step(0.0, 0.2, importance=imp, text_tokens=0)


def test_silent_frames_carry_text_before_speech_pays():
    ctl = AdaptiveController(1100.0, dtx=True, text_share=0.0)
    sent = [ctl.step(0.0, 0.0, importance=0.1, text_tokens=8).text_tokens for _ in range(4)]
    assert sum(sent) >= 16 and ctl.counters["tokens"] == 4      # 1 DTX token per frame
    speech = AdaptiveController(1100.0, text_share=0.0)
    assert not any(speech.step(0.0, 0.0, importance=0.9, text_tokens=8).text_tokens for _ in range(50))


def test_text_share_is_checked():
    with pytest.raises(ValueError, match="text_share"):
        AdaptiveController(1100.0, text_share=0.6)
