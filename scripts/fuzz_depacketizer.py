#!/usr/bin/env python3
"""Fuzz the depacketizer: random and mutated packets into Reassembler and the block's handler.

Usage: fuzz_depacketizer.py [--count 1000000] [--seed 0] [--block-every 50]
                            [--format v1|compact|compact_crc] [--session 100000]

Mix per packet: valid packets of a running stream (reordered, duplicated), random byte strings,
valid packets with bit flips / truncation / extension / inserted bytes, and random headers
with a correct CRC (so the parser's deeper checks and the sequence logic see garbage too).
Every `--session` packets a new receiver with random settings (d, d_max, clocked or not,
packets with or without the metadata `frame` / `rx_time` hints, extra duplicates of recent
packets). Every `--block-every`-th input also goes through the GNU Radio block's message
handler as a PMT (including non-PDU messages). Checks after every output (the strict check):
output indices consecutive except at a resync (a clock slip must not break the run), no
received frame emitted twice (a duplicate packet), tokens in [0, 2048), states valid, receiver
memory bounded. Prints the count, the number of exceptions (must be 0) and invariant
violations; exit status 1 if either is nonzero.
`--format` picks the packet format (core.link.packet_formats) of the stream, the mutations and
the receiver; the compact formats have one frame per packet and 9-bit sequence numbers.
`--text` is the share of inputs from the text side channel (docs/text-channel.md): chunks of
real messages (call sign, random UTF-8 text), mutated chunks and random chunk headers; they go
where the depacketizer sends them (`is_text`: a TextReceiver, else the Reassembler). A message
the receiver shows that no sender sent (random bytes that pass the CRC-16) is counted as a
false text message.
"""
import argparse
import random
import sys
import time
import traceback
from collections import OrderedDict

from gnuradio.largesc.core.link import packet as P
from gnuradio.largesc.core.link.frames import STATE_NAMES, STATE_ORIGINAL
from gnuradio.largesc.core.link.packet_formats import DEFAULT_FORMAT, FORMATS, get_format
from gnuradio.largesc.core.link.reassembly import Reassembler
from gnuradio.largesc.core.link.text import Chunk, TextReceiver, TextSender, is_text, pack_chunk, unpack_chunk

VALID_STATES = set(STATE_NAMES)
FMT = get_format(DEFAULT_FORMAT)            # set by main(--format)


def random_frames(rng):
    frames = []
    for _ in range(1 if rng.random() < 0.9 or FMT.max_fpp == 1 else rng.randint(2, FMT.max_fpp)):
        n, r = rng.randint(0, P.MAX_N), rng.randint(0, P.MAX_R)
        frames.append(P.PacketFrame(tuple(rng.getrandbits(11) for _ in range(n)),
                                    tuple(rng.getrandbits(11) for _ in range(r))))
    return frames


def with_crc(body: bytes) -> bytes:
    return body + bytes((P.crc8(body),))


def mutate(rng, pkt: bytes) -> bytes:
    b = bytearray(pkt)
    kind = rng.randrange(6)
    if kind == 0:
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(8 * len(b))
            b[i // 8] ^= 0x80 >> (i % 8)
        return bytes(b)
    if kind == 1:
        return bytes(b[:rng.randrange(len(b))])
    if kind == 2:
        return bytes(b) + rng.randbytes(rng.randint(1, 8))
    if kind == 3:
        i = rng.randrange(len(b))
        return bytes(b[:i]) + rng.randbytes(1) + bytes(b[i:])
    if kind == 4:                                   # flip header bits, then fix the CRC
        body = b[:-1] if FMT.has_crc else b
        if not body:
            return bytes(b)
        i = rng.randrange(min(24, 8 * len(body)))
        body[i // 8] ^= 0x80 >> (i % 8)
        return with_crc(bytes(body)) if FMT.has_crc else bytes(body)
    body = rng.randbytes(rng.randint(1, 30))        # random body, valid CRC
    return with_crc(body) if FMT.has_crc else body


class Stream:
    """A plausible sender: consecutive seqs (sometimes restarting) with random allocations.
    `frame` is the absolute index of the last packet's first frame (PDU metadata `frame`)."""

    def __init__(self, rng):
        self.rng = rng
        self.restart()

    def restart(self):
        self.epoch = self.rng.randrange(P.EPOCH_MOD)
        self.abs = self.rng.choice([0, self.rng.randrange(FMT.seq_mod), self.rng.randrange(10 ** 5)])
        self.seq = self.abs % FMT.seq_mod

    def next(self) -> bytes:
        if self.rng.random() < 0.001:
            self.restart()
        frames = random_frames(self.rng)
        pkt = FMT.pack(self.epoch, self.seq, frames)
        self.frame = self.abs
        self.abs += len(frames)
        self.seq = (self.seq + len(frames)) % FMT.seq_mod
        return pkt


class TextStream:
    """A text sender: call signs and random UTF-8 messages, chunk by chunk."""

    def __init__(self, rng):
        self.rng, self.sender, self.sent = rng, TextSender("DL1ABC"), {"DL1ABC"}
        self.sender.tick(0)

    def next(self) -> bytes:
        if not self.sender.head_tokens():
            text = "".join(self.rng.choice("abcäöü€ 0123456789") for _ in range(self.rng.randint(1, 60)))
            self.sent.add(text)
            self.sender.submit(text)
        return pack_chunk(self.sender.pop(), FMT)

    def random_chunk(self) -> bytes:
        last = self.rng.randrange(32)
        return pack_chunk(Chunk(self.rng.randrange(3), self.rng.randrange(16), self.rng.randrange(last + 1),
                                last, self.rng.randbytes(self.rng.randint(1, 8))), FMT)


def check(frames, state, errors, resynced):
    """The strict check. Output indices must be consecutive; only a resync (sender restart or
    long outage) may start a new run, at the first frame of the new stream (emitted in the same
    or a later push); a clock slip (clocked mode) may not. No received frame may come out twice:
    the same sender frame index with the same tokens (a duplicate packet) within a session."""
    if resynced:
        state["resync"] = True
        state["seen"].clear()
    for f in frames:
        if state["last"] is not None and f.index != state["last"] + 1:
            if state["resync"]:
                state["resync"] = False
            else:
                errors.append(f"index {f.index} after {state['last']}")
        state["last"] = f.index
        if len(f.tokens) != 8 or len(f.states) != 8 or any(not 0 <= t < 2048 for t in f.tokens) \
                or any(s not in VALID_STATES for s in f.states):
            errors.append(f"bad frame {f}")
        if f.received and STATE_ORIGINAL in f.states:
            key = (f.epoch, f.sender_index)
            if state["seen"].get(key) == f.tokens:
                errors.append(f"frame {f.sender_index} (epoch {f.epoch}) emitted twice, "
                              f"at index {f.index}")
            state["seen"][key] = f.tokens
            if len(state["seen"]) > 4096:
                state["seen"].popitem(last=False)


def new_state():
    return {"last": None, "resync": False, "seen": OrderedDict()}


def make_block():
    try:
        import pmt

        from gnuradio.largesc.depacketizer import depacketizer
    except Exception:                               # noqa: BLE001 - GNU Radio missing
        return None, None
    return depacketizer(d=2, d_max=3, packet_format=FMT.name), pmt


def block_message(rng, pmt, data: bytes):
    k = rng.randrange(6)
    if k == 0:
        return pmt.intern("junk")
    if k == 1:
        return pmt.cons(pmt.PMT_NIL, pmt.init_f32vector(2, [1.0, float("nan")]))
    if k == 2:
        return pmt.cons(pmt.from_long(rng.randrange(100)), pmt.init_u8vector(len(data), list(data)))
    if k == 3:
        eos = pmt.PMT_T if rng.random() < 0.5 else pmt.from_long(rng.randrange(3))
        n = rng.choice([-1, 0, 10**12, rng.randrange(10**6)])
        meta = pmt.dict_add(pmt.make_dict(), pmt.intern("eos"), eos)
        meta = pmt.dict_add(meta, pmt.intern("n_frames"), pmt.from_long(n))
        return pmt.cons(meta, pmt.init_u8vector(len(data), list(data)))
    return pmt.cons(pmt.PMT_NIL, pmt.init_u8vector(len(data), list(data)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--block-every", type=int, default=50, help="0: core only")
    ap.add_argument("--format", choices=FORMATS, default=DEFAULT_FORMAT, help="packet format")
    ap.add_argument("--text", type=float, default=0.1, help="share of text-channel inputs")
    ap.add_argument("--session", type=int, default=100_000,
                    help="packets per receiver session (a new Reassembler, random settings)")
    args = ap.parse_args(argv)
    global FMT
    FMT = get_format(args.format)
    rng = random.Random(args.seed)
    stream = Stream(rng)
    texts, tr, text_in, false_text = TextStream(rng), TextReceiver(), 0, 0
    block, pmt = make_block() if args.block_every else (None, None)
    exceptions, errors = 0, []
    ra, state, held = Reassembler(d=2, d_max=3, packet_format=FMT), new_state(), []
    hinted = 0                                  # 0: bare bytes, 1: + metadata frame, 2: + rx_time
    dup_every = 0                               # > 0: re-send a recent packet now and then
    recent = []
    t0 = time.perf_counter()
    for i in range(args.count):
        if i % args.session == 0 and i:
            ra, state = Reassembler(d=rng.randint(1, 3), d_max=rng.randint(3, 4),
                                    clocked=rng.random() < 0.5, timeout=3.0,
                                    packet_format=FMT), new_state()
            hinted, dup_every = rng.randrange(3), rng.choice([0, 0, 3, 10])
        u = rng.random()
        hint = {}
        if u < args.text:
            v = rng.random()
            data = texts.next() if v < 0.5 else texts.random_chunk() if v < 0.7 else mutate(rng, texts.next())
            u = 2.0                                 # none of the voice kinds below
        elif u < args.text + 0.4 * (1 - args.text):
            data = stream.next()
            if hinted:                          # where the sender put it (sometimes wrong)
                hint["frame"] = stream.frame if rng.random() < 0.99 else rng.randrange(10 ** 6)
                if hinted == 2:
                    hint["rx_time"] = stream.frame + rng.random() * 2
            recent = (recent + [(data, hint)])[-8:]
            if rng.random() < 0.1:                  # hold back: reordering
                held.append((data, hint))
                continue
            if rng.random() < 0.05 and held:
                data, hint = held.pop(0)
            elif dup_every and rng.randrange(dup_every) == 0:
                data, hint = rng.choice(recent)     # a duplicate of a recent packet
        elif u < 2.0 and u < args.text + 0.55 * (1 - args.text):
            data = rng.randbytes(rng.randint(0, 40))
        elif u < 2.0:
            data = mutate(rng, stream.next() if rng.random() < 0.5 else FMT.pack(
                rng.randrange(4), rng.randrange(FMT.seq_mod), random_frames(rng)))
        try:
            if is_text(data, FMT):                  # as the depacketizer routes it
                text_in += 1
                try:
                    msg = tr.push(unpack_chunk(data, FMT))
                    false_text += msg is not None and msg.text not in texts.sent
                except P.PacketError:
                    pass
                if block is not None and i % args.block_every == 0:
                    block.handle_pdu(block_message(rng, pmt, data))
                continue
            resyncs = ra.counters["resyncs"]
            out = ra.push(data, now=float(i), **hint)
            if i % 997 == 0:
                out += ra.tick(float(i) + rng.random() * 20)
            if i % 50_021 == 0:
                out += ra.flush()
            check(out, state, errors, ra.counters["resyncs"] != resyncs)
            if len(ra._slots) > 4 * ra.max_jump + 16 or len(ra._done) > ra._window:
                errors.append(f"memory: {len(ra._slots)} pending slots, {len(ra._done)} emitted")
            if block is not None and i % args.block_every == 0:
                block.handle_pdu(block_message(rng, pmt, data))
                del block._tokens[:], block._states[:]
        except Exception:                           # noqa: BLE001 - this is what we count
            exceptions += 1
            if exceptions <= 5:
                traceback.print_exc()
    dt = time.perf_counter() - t0
    print(f"format: {FMT.name}")
    print(f"packets: {args.count}  exceptions: {exceptions}  invariant violations: {len(errors)}"
          f"  ({args.count / dt:,.0f} packets/s)")
    print(f"text packets: {text_in}  text messages shown: {tr.counters['text_messages']}  "
          f"false text messages: {false_text}")
    print("receiver counters (last session):", {k: v for k, v in ra.counters.items() if v})
    print("text receiver counters:", {k: v for k, v in tr.counters.items() if v})
    if block is not None:
        print("block counters:", {k: v for k, v in block.get_stats().items() if v})
    for e in errors[:5]:
        print("violation:", e)
    return 1 if exceptions or errors else 0


if __name__ == "__main__":
    sys.exit(main())
