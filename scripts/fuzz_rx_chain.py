#!/usr/bin/env python3
"""Fuzz the whole receiver: largesc_rx (profile tiny) in a real GNU Radio top block, fed with
hypothesis-generated PDUs on its `pdus` port.

Usage: fuzz_rx_chain.py [--examples N | --minutes M] [--seed S] [--batch 25] [--fork-every 150]
                        [--core-only]

`--core-only` runs the same hypothesis examples through the reference and its strict check
only (no flowgraph, no models: thousands of examples a second), for the large case counts.

Each example builds a fresh flowgraph

    PDU feeder (a message source that publishes the example's messages, then finishes)
        --pdus--> largesc_rx (depacketizer -> token recovery -> Mimi decoder) -> counting sink

with a random configuration (d, d_max, recovery zero / repeat / prefix / moshi) and messages
made from a valid stream of the real packetizer (half of them with the adaptive controller's
metadata `frame`, a few of those wrong) (core.link.packet.Packetizer: random tokens and
allocations, any epoch and starting sequence number, 1..3 frames per packet), then mutated:
packets dropped, duplicated, moved (reordered), bit-flipped, truncated, extended, header fields
set to extremes with a correct CRC (sequence 0 / 4095 / far ahead, N = 8 and R = 7, eight
frames per packet), a wrong epoch, random byte strings, random bytes with a valid CRC,
non-PDU messages (symbols, numbers, f32 vectors, bad metadata), early or repeated
end-of-stream marks and marks with odd `n_frames` (wrong, negative, float, string). The stream
ends with a correct end-of-stream mark, a wrong one, or none (then GNU Radio's `done` and the
depacketizer's grace period end it).

Invariants, per example:
- no exception in any block: the Python blocks' work / general_work are wrapped, GNU Radio's
  logger is watched for error-level messages (the scheduler logs an exception escaping a block
  there), and the depacketizer's drop counter may only see the reasons a PDU is refused for (an
  internal exception swallowed by its handler is a failure too);
- the flowgraph ends by itself within a timeout (no hang);
- frame accounting against a reference: the core Reassembler fed the same messages, with the
  block's rules (parse_pdu, the first eos mark flushes, no mark: flush at the end). The
  depacketizer, token recovery and decoder each put out exactly that many frames (messages
  after the eos mark are dropped and counted, so they add none) and the output has frames x 1920
  samples;
- order and content: the frames reaching the decoder carry, for every codebook the reference
  marks received (original or copy), the reference's token;
- the strict check on the reference (the core receiver) itself: its output indices are
  consecutive except where a resync starts a new run, and no received frame comes out twice
  (a duplicated packet is a duplicate, whenever it comes);
- the output audio is finite.

Models are built once per configuration and deep-copied into each example's blocks (same
weights, fresh state: the same as loading them again, ten times faster). Long runs go in child
processes of --fork-every examples each, because GNU Radio 3.10 keeps part of every finished
flowgraph's buffers (SysV shared memory, 4096 segments per machine) until the process exits
(see gr_support/hier.py, called after every example). Prints one count line
`examples: N  failures: F  ...` and exit status 1 on a failure (the shrunk example is printed).
"""
from __future__ import annotations

import argparse
import copy
import os
import random
import sys
import threading
import time
import traceback

os.environ.setdefault("NO_TORCH_COMPILE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pmt  # noqa: E402
from gnuradio import gr  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hyp_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gnuradio.largesc.core.link import packet as P  # noqa: E402
from gnuradio.largesc.core.link.frames import FRAME_SAMPLES, KNOWN_STATES, NUM_CODEBOOKS, STATE_ORIGINAL  # noqa: E402
from gnuradio.largesc.core.link.reassembly import Reassembler, packet_hints  # noqa: E402
from gnuradio.largesc.gr_support.hier import release_hier_blocks  # noqa: E402
from gnuradio.largesc.gr_support.pdu import BadMessage, eos_frames, is_eos, parse_pdu  # noqa: E402

K = NUM_CODEBOOKS
PDUS = pmt.intern("pdus")
REFUSAL_REASONS = {"not_pdu", "not_u8vector", "bad_meta"}      # gr_support.pdu.BadMessage reasons
MAX_FRAMES = 400                  # examples whose reference exceeds this are not run (time)
RECOVERIES = ["zero", "repeat", "prefix", "moshi"]


# ----------------------------------------------------------------------------- models
class ModelCache:
    """Build each model once; every block gets a deep copy (fresh state, same weights)."""

    def __init__(self):
        import gnuradio.largesc.core.codec as codec_mod
        import gnuradio.largesc.token_recovery  # noqa: F401 - the package shadows the module name
        tr_mod = sys.modules["gnuradio.largesc.token_recovery"]
        self._codec_mod, self._tr_mod = codec_mod, tr_mod
        self._load_codec, self._build_recovery = codec_mod.load_codec, tr_mod.build_recovery
        self._cache = {}

    def _cached(self, fn, key, *args, **kwargs):
        if key not in self._cache:
            self._cache[key] = fn(*args, **kwargs)
        return copy.deepcopy(self._cache[key])

    def install(self):
        def load_codec(profile="tiny", **kw):
            return self._cached(self._load_codec, ("codec", profile, repr(sorted(kw.items()))),
                                profile, **kw)

        def build_recovery(strategy="moshi", **kw):
            return self._cached(self._build_recovery, ("rec", strategy, repr(sorted(kw.items()))),
                                strategy, **kw)
        self._codec_mod.load_codec = load_codec
        self._tr_mod.build_recovery = build_recovery

    def uninstall(self):
        self._codec_mod.load_codec = self._load_codec
        self._tr_mod.build_recovery = self._build_recovery


# ----------------------------------------------------------------------------- messages
def with_crc(body: bytes) -> bytes:
    return body + bytes((P.crc8(body),))


def sender_stream(rng, n_frames, d, fpp, epoch, seq0):
    """Packets of a real Packetizer: random tokens, allocations with R <= N of frame n - d."""
    pk = P.Packetizer(d=d, epoch=epoch, fpp=fpp, seq0=seq0)
    n_hist, pkts = {}, []
    for n in range(n_frames):
        n_send = rng.choice([rng.randint(0, 8), 8, 4])
        n_repeat = rng.randint(0, min(n_hist.get(n - d, 0), P.MAX_R))
        n_hist[n] = n_send
        out = pk.push([rng.getrandbits(11) for _ in range(K)], n_send, n_repeat)
        if out is not None:
            pkts.append(out)
    tail = pk.flush()
    if tail is not None:
        pkts.append(tail)
    return pkts, pk


def header_extreme(rng, pkt: bytes, how: int) -> bytes:
    """A valid packet with a field set to an extreme value (CRC recomputed)."""
    try:
        p = P.unpack(pkt)
    except P.PacketError:
        return pkt
    seq, epoch, frames_ = p.seq, p.epoch, list(p.frames)
    if how == 0:
        seq = 0
    elif how == 1:
        seq = P.SEQ_MOD - 1
    elif how == 2:
        seq = (seq + P.SEQ_MOD // 2) % P.SEQ_MOD            # far ahead / behind
    elif how == 3:
        epoch = (epoch + rng.randrange(1, P.EPOCH_MOD)) % P.EPOCH_MOD     # wrong epoch
    elif how == 4:                                          # N = 8, R = 7 in every frame
        frames_ = [P.PacketFrame(tuple(rng.getrandbits(11) for _ in range(P.MAX_N)),
                                 tuple(rng.getrandbits(11) for _ in range(P.MAX_R))) for _ in frames_]
    elif how == 5:                                          # eight frames in one packet
        frames_ = [P.PacketFrame(tuple(rng.getrandbits(11) for _ in range(rng.randint(0, 8))), ())
                   for _ in range(P.MAX_FPP)]
    elif how == 6:                                          # empty frame (N = R = 0)
        frames_ = [P.PacketFrame((), ())]
    return P.pack(epoch, seq, frames_)


def pdu(data: bytes, meta=None):
    d = pmt.make_dict()
    for k, v in (meta or {}).items():
        d = pmt.dict_add(d, pmt.intern(k), v)
    return pmt.cons(d if meta is not None else pmt.PMT_NIL, pmt.init_u8vector(len(data), list(data)))


def eos_msg(n):
    """End-of-stream mark; `n` is a PMT value for n_frames or None (missing)."""
    meta = {"eos": pmt.PMT_T}
    if n is not None:
        meta["n_frames"] = n
    return pdu(b"", meta)


def odd_message(rng, k):
    """Messages that are not usable PDUs, or PDUs with odd metadata."""
    data = rng.randbytes(rng.randint(0, 12))
    return [pmt.intern("junk"), pmt.PMT_NIL, pmt.from_long(rng.randrange(-5, 5)), pmt.make_dict(),
            pmt.cons(pmt.PMT_NIL, pmt.init_f32vector(2, [1.0, float("nan")])),
            pmt.cons(pmt.from_long(3), pmt.init_u8vector(len(data), list(data))),
            pmt.cons(pmt.PMT_T, pmt.init_u8vector(len(data), list(data))),
            pdu(data, {"eos": pmt.from_long(1), "n_frames": pmt.from_long(3)}),   # eos not True
            pdu(data, {"seq": pmt.from_double(float("nan")), "x": pmt.intern("y")}),
            pmt.cons(pmt.make_dict(), pmt.init_s32vector(2, [1, 2])),
            ][k % 10]


N_OPS = 12


def apply_op(rng, msgs, op, arg):
    """Mutate the message list (of ('pkt', bytes) / ('msg', pmt)) in place."""
    if not msgs and op not in (6, 7, 8, 9):
        return
    i = arg % max(1, len(msgs))
    if op == 0:                                         # drop
        del msgs[i]
    elif op == 1:                                       # duplicate
        msgs.insert(rng.randrange(len(msgs) + 1), msgs[i])
    elif op == 2:                                       # move (reorder)
        m = msgs.pop(i)
        msgs.insert(rng.randrange(len(msgs) + 1), m)
    elif op in (3, 4, 5, 10, 11) and msgs[i][0] == "pkt":    # the metadata stays as it was
        b = bytearray(msgs[i][1])
        if op == 3 and b:                               # bit flips
            for _ in range(rng.randint(1, 4)):
                j = rng.randrange(8 * len(b))
                b[j // 8] ^= 0x80 >> (j % 8)
        elif op == 4:                                   # truncate
            b = b[:rng.randrange(len(b) + 1)]
        elif op == 5:                                   # extend
            b += rng.randbytes(rng.randint(1, 8))
        elif op == 10:                                  # header extreme / wrong epoch
            b = bytearray(header_extreme(rng, bytes(b), rng.randrange(7)))
        elif op == 11 and len(b) > 1:                   # header bit flip with a fixed CRC
            j = rng.randrange(min(24, 8 * (len(b) - 1)))
            b[j // 8] ^= 0x80 >> (j % 8)
            b = bytearray(with_crc(bytes(b[:-1])))
        msgs[i] = ("pkt", bytes(b)) + tuple(msgs[i][2:])
    elif op == 6:                                       # random bytes
        msgs.insert(rng.randrange(len(msgs) + 1), ("pkt", rng.randbytes(rng.randint(0, 40))))
    elif op == 7:                                       # random body with a valid CRC
        msgs.insert(rng.randrange(len(msgs) + 1), ("pkt", with_crc(rng.randbytes(rng.randint(3, 30)))))
    elif op == 8:                                       # not a usable PDU
        msgs.insert(rng.randrange(len(msgs) + 1), ("msg", odd_message(rng, arg)))
    elif op == 9:                                       # an early eos mark
        msgs.insert(rng.randrange(len(msgs) + 1), ("msg", eos_msg(pmt.from_long(rng.randrange(0, 40)))))


@st.composite
def examples(draw):
    d = draw(st.integers(1, 3))
    cfg = {"d": d, "d_max": draw(st.integers(d, d + 2)), "fpp": draw(st.integers(1, min(d, 3))),
           "recovery": draw(st.sampled_from(RECOVERIES))}
    n_frames = draw(st.integers(0, 40))
    epoch = draw(st.integers(0, P.EPOCH_MOD - 1))
    seq0 = draw(st.one_of(st.just(0), st.integers(P.SEQ_MOD - 20, P.SEQ_MOD - 1),
                          st.integers(0, P.SEQ_MOD - 1)))
    rng = random.Random(draw(st.integers(0, 2 ** 32 - 1)))
    pkts, pk = sender_stream(rng, n_frames, cfg["d"], cfg["fpp"], epoch, seq0)
    # the adaptive controller's metadata `frame` (the sender's frame index of the packet's first
    # frame), which the depacketizer uses to keep the sender's timeline; sometimes wrong
    cfg["hinted"] = draw(st.booleans()) and seq0 <= 200
    if cfg["hinted"]:
        wrong = draw(st.sets(st.integers(0, max(0, len(pkts) - 1)), max_size=2))
        msgs = [("pkt", p, {"frame": pmt.from_long(seq0 + k * cfg["fpp"] if k not in wrong
                                                   else rng.choice([-1, 7, 10 ** 9]))})
                for k, p in enumerate(pkts)]
    else:
        msgs = [("pkt", p) for p in pkts]
    ops = draw(st.lists(st.tuples(st.integers(0, N_OPS - 1), st.integers(0, 10 ** 6)), max_size=10))
    for op, arg in ops:
        apply_op(rng, msgs, op, arg)
    end = draw(st.sampled_from(["eos", "eos", "eos", "none", "eos_wrong", "eos_twice", "eos_odd"]))
    if end == "eos":
        msgs.append(("msg", eos_msg(pmt.from_long(pk.frame_index))))
    elif end == "eos_twice":
        msgs.append(("msg", eos_msg(pmt.from_long(pk.frame_index))))
        msgs.append(("msg", eos_msg(pmt.from_long(pk.frame_index + 3))))
    elif end == "eos_wrong":
        msgs.append(("msg", eos_msg(pmt.from_long(max(-1, pk.frame_index + draw(st.integers(-5, 30)))))))
    elif end == "eos_odd":
        msgs.append(("msg", eos_msg(draw(st.sampled_from(
            [None, pmt.from_double(12.0), pmt.intern("7"), pmt.PMT_T, pmt.from_long(-1),
             pmt.from_uint64(2 ** 64 - 1)])))))
    if draw(st.booleans()) and msgs:                    # data after the end of the stream
        msgs.append(msgs[draw(st.integers(0, len(msgs) - 1))])
    cfg["n_sent"] = pk.frame_index
    cfg["end"] = end
    cfg["ops"] = [o for o, _ in ops]
    return cfg, [e[1] if e[0] == "msg" else pdu(e[1], e[2] if len(e) > 2 else None) for e in msgs]


# ----------------------------------------------------------------------------- reference
def reference(cfg, messages, resyncs=None):
    """Frames the depacketizer must emit: (frames up to the eos flush, frames after it).
    resyncs: a list that gets the position in `before` of every resync's first frame."""
    ra = Reassembler(d=cfg["d"], d_max=cfg["d_max"], packet_format="v1")    # the stream is v1
    before, after, eos = [], [], False
    for msg in messages:
        try:
            meta, data = parse_pdu(msg)
        except BadMessage:
            continue
        if is_eos(meta):
            if not eos:
                eos = True
                before += ra.flush(eos_frames(meta))
            continue
        n = ra.counters["resyncs"]
        frame, rx_time = packet_hints(meta)
        out = ra.push(data, frame=frame, rx_time=rx_time)
        if ra.counters["resyncs"] != n and resyncs is not None and not eos:
            resyncs.append(len(before))
        (after if eos else before).extend(out)
    if not eos:
        before += ra.flush()
    return before, after


def strict_check(frames, resyncs):
    """The strict check on the reference itself: output indices consecutive, a new run only
    where a resync started one (in the same or a later push); no received frame (sender index
    and tokens) emitted twice, so duplicated packets are duplicates. Returns the problems."""
    problems, seen, marks, pending = [], {}, sorted(resyncs), False
    for k, f in enumerate(frames):
        while marks and marks[0] <= k:
            marks.pop(0)
            pending = True
        if k and f.index != frames[k - 1].index + 1:
            if pending:
                pending = False
                seen.clear()
            else:
                problems.append(f"reference: index {f.index} after {frames[k - 1].index}")
        if f.received and STATE_ORIGINAL in f.states:
            key = (f.epoch, f.sender_index)
            if seen.get(key) == f.tokens:
                problems.append(f"reference: frame {f.sender_index} emitted twice (a duplicate)")
            seen[key] = f.tokens
        if len(problems) > 3:
            break
    return problems


# ----------------------------------------------------------------------------- flowgraph
class _feeder(gr.sync_block):
    """Message source: publishes its messages on `pdus` in its first work(), then finishes
    (GNU Radio then sends `done` to the subscribers' `system` port)."""

    def __init__(self, messages):
        gr.sync_block.__init__(self, name="fuzz_pdu_feeder", in_sig=None, out_sig=[np.uint8])
        self.messages = messages
        self.message_port_register_out(PDUS)

    def work(self, input_items, output_items):
        for m in self.messages:
            self.message_port_pub(PDUS, m)
        return -1


class _sink(gr.sync_block):
    def __init__(self):
        gr.sync_block.__init__(self, name="fuzz_count_sink", in_sig=[np.float32], out_sig=None)
        self.samples = self.nonfinite = 0

    def work(self, input_items, output_items):
        x = input_items[0]
        self.samples += len(x)
        self.nonfinite += int((~np.isfinite(x)).sum())
        return len(x)


class Failure(AssertionError):
    pass


_LOG = {"backend": None}


def watch_gr_log():
    """GNU Radio's logger at level error (the blocks' rate-limited warnings about refused input
    are expected), with every error-level message also kept in a dictionary backend: the
    scheduler reports an exception escaping a block there. Called once per process."""
    gr.logging().set_default_level(gr.log_levels.err)
    if _LOG["backend"] is None:
        _LOG["backend"] = gr.dictionary_logger_backend()
        gr.logging().add_default_sink(_LOG["backend"])


def gr_errors():
    """Number of error-level GNU Radio log messages so far (0 if not watched)."""
    b = _LOG["backend"]
    return sum(len(v) for v in b.get_map().values()) if b is not None else 0


def gr_error_text(skip):
    b = _LOG["backend"]
    msgs = sorted((t, f"{name}: {m}") for name, v in b.get_map().items() for t, m in v)
    return [m for _, m in msgs[skip:]]


def run_example(cfg, messages, timeout_s=None, eos_grace_s=0.05):
    """Run one example; raise Failure (with the reason) if an invariant breaks. Returns stats."""
    from gnuradio import blocks

    from gnuradio.largesc.largesc_rx import largesc_rx
    log_errors = gr_errors()
    resyncs = []
    ref_before, _ = reference(cfg, messages, resyncs)
    lo = hi = len(ref_before)                  # the depacketizer drops what follows the eos mark
    tb = gr.top_block("fuzz_rx_chain")
    rx = largesc_rx(samp_rate=24000, profile="tiny", d=cfg["d"], d_max=cfg["d_max"],
                    recovery=cfg["recovery"], seed=0, frame_by_frame=True, packet_format="v1")
    dep = rx.depacketizer
    dep.eos_grace_s = eos_grace_s
    errors = []

    def guard(block, name):
        fn = getattr(block, name)

        def guarded(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:                         # noqa: BLE001 - what we look for
                errors.append(f"{block.name()}.{name}: {type(exc).__name__}: {exc}\n"
                              + traceback.format_exc())
                raise
        setattr(block, name, guarded)

    guard(dep, "work")
    guard(rx.recovery, "general_work")
    guard(rx.decoder, "work")
    bad = dep._bad

    def dep_bad(kind, text=None):
        if kind not in REFUSAL_REASONS:
            errors.append(f"depacketizer swallowed an internal exception: {text or kind}")
        return bad(kind, text)
    dep._bad = dep_bad
    decoded = []
    stream_decode = rx.decoder.codec.stream_decode

    def decode(codes, prefix=None):
        decoded.append(np.array(codes, copy=True))
        return stream_decode(codes, prefix)
    rx.decoder.codec.stream_decode = decode

    feeder, null, sink = _feeder(messages), blocks.null_sink(gr.sizeof_char), _sink()
    tb.connect(feeder, null)
    tb.msg_connect(feeder, "pdus", rx, "pdus")
    tb.connect(rx, sink)
    if timeout_s is None:
        timeout_s = 30.0 + 0.25 * hi
    tb.start()
    done = threading.Event()

    def waiter():
        tb.wait()
        done.set()
    threading.Thread(target=waiter, daemon=True).start()
    if not done.wait(timeout_s):
        tb.stop()
        ok = done.wait(10.0)
        raise Failure(f"hang: flowgraph still running after {timeout_s:.0f} s (stop "
                      f"{'worked' if ok else 'did not work either'}); depacketizer "
                      f"{dep.get_stats()}, errors {errors}")
    s = rx.get_stats()
    release_hier_blocks(rx)                  # GNU Radio issue #7706 (see gr_support/hier.py)
    n_dep, n_rec_in = s["depacketizer"]["frames_out"], s["recovery"].get("frames_in", 0)
    n_rec_out, n_dec = s["recovery"].get("frames_out", 0), s["decoder"]["frames"]
    problems = list(errors) + strict_check(ref_before, resyncs)
    if gr_errors() != log_errors:
        problems.append(f"GNU Radio logged errors: {gr_error_text(log_errors)}")
    if not lo <= n_dep <= hi:
        problems.append(f"depacketizer emitted {n_dep} frames, reference {lo}..{hi}")
    if not n_dep == n_rec_in == n_rec_out == n_dec:
        problems.append(f"frame counts differ: depacketizer {n_dep}, recovery {n_rec_in} in / "
                        f"{n_rec_out} out, decoder {n_dec}")
    if sink.samples != n_dec * FRAME_SAMPLES:
        problems.append(f"output {sink.samples} samples for {n_dec} frames")
    if sink.nonfinite:
        problems.append(f"{sink.nonfinite} non-finite output samples")
    codes = np.concatenate(decoded, axis=1) if decoded else np.zeros((K, 0), np.int64)
    ref = ref_before
    for k in range(min(codes.shape[1], len(ref))):
        f = ref[k]
        for c in range(min(K, codes.shape[0])):
            if f.states[c] in KNOWN_STATES and int(codes[c, k]) != int(f.tokens[c]):
                problems.append(f"decoded frame {k} codebook {c}: {int(codes[c, k])}, "
                                f"reference {f.tokens[c]} (frame {f.index})")
                break
        if len(problems) > 5:
            break
    if problems:
        raise Failure("; ".join(problems))
    return {"frames": n_dep, "post_eos": n_dep - lo, "bad": s["depacketizer"].get("bad", 0),
            "bad_messages": s["depacketizer"].get("bad_messages", 0)}


# ----------------------------------------------------------------------------- driver
class Tally:
    def __init__(self):
        self.examples = self.frames = self.skipped = self.post_eos = 0
        self.bad = self.bad_messages = 0
        self.by_recovery = {r: 0 for r in RECOVERIES}
        self.by_end = {}


def make_test(tally, n, seed, stop_at, core_only=False):
    @hyp_seed(seed)
    @settings(max_examples=n, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink],
              print_blob=False)
    @given(examples())
    def test(ex):
        cfg, messages = ex
        if time.monotonic() > stop_at:
            return
        resyncs = []
        before, after = reference(cfg, messages, resyncs)
        if core_only:
            problems = strict_check(before, resyncs)
            if problems:
                raise Failure("; ".join(problems))
            tally.examples += 1
            tally.frames += len(before)
            tally.by_recovery[cfg["recovery"]] += 1
            tally.by_end[cfg["end"]] = tally.by_end.get(cfg["end"], 0) + 1
            return
        if len(before) + len(after) > MAX_FRAMES:          # e.g. a far eos: 65536 lost frames
            tally.skipped += 1
            return
        r = run_example(cfg, messages)
        tally.examples += 1
        tally.frames += r["frames"]
        tally.post_eos += r["post_eos"] > 0
        tally.bad += r["bad"]
        tally.bad_messages += r["bad_messages"]
        tally.by_recovery[cfg["recovery"]] += 1
        tally.by_end[cfg["end"]] = tally.by_end.get(cfg["end"], 0) + 1
    return test


def fuzz(args, seed_base, budget, stop_at, tally):
    """Run examples in this process until `budget` examples or `stop_at`; the failure or None."""
    level = gr.logging().default_level()
    watch_gr_log()
    cache = ModelCache()
    cache.install()
    t0, batch_no, failure = time.monotonic(), 0, None
    try:
        while time.monotonic() < stop_at and tally.examples < budget:
            n = min(args.batch, budget - tally.examples)
            test = make_test(tally, max(1, n), seed_base + batch_no, stop_at, args.core_only)
            batch_no += 1
            try:
                test()
            except Failure as exc:
                failure = exc
                break
            except Exception as exc:                        # noqa: BLE001 - harness or hypothesis
                failure = exc
                traceback.print_exc()
                break
            if not args.quiet:
                print(f"[{time.monotonic() - t0:7.1f} s] examples {tally.examples}, frames "
                      f"{tally.frames}, skipped {tally.skipped}", file=sys.stderr, flush=True)
    finally:
        cache.uninstall()
        gr.logging().set_default_level(level)
    return failure


def fuzz_in_children(args, stop_at, tally):
    """The long run: one child process per --fork-every examples (GNU Radio keeps part of every
    finished flowgraph's shared-memory buffers until the process exits, see
    gr_support.hier.release_hier_blocks). Adds the children's counts to `tally`; the failure or None."""
    import json
    import subprocess
    child_no = 0
    while time.monotonic() < stop_at and (not args.examples or tally.examples < args.examples):
        n = args.fork_every if not args.examples else min(args.fork_every, args.examples - tally.examples)
        minutes = max(0.1, (stop_at - time.monotonic()) / 60.0) if stop_at != float("inf") else 0.0
        cmd = [sys.executable, __file__, "--examples", str(n), "--seed", str(args.seed),
               "--seed-offset", str(child_no * 1000), "--batch", str(args.batch), "--fork-every", "0",
               "--tally-json"] + (["--minutes", f"{minutes:.3f}"] if minutes else []) \
            + (["--quiet"] if args.quiet else [])
        child_no += 1
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = proc.stdout.splitlines()
        t = next((json.loads(x[6:]) for x in lines if x.startswith("TALLY ")), None)
        if t is None:
            return RuntimeError(f"child {child_no} ended without a count (status {proc.returncode}):\n"
                                + proc.stdout[-3000:] + proc.stderr[-3000:])
        for k in ("examples", "frames", "skipped", "post_eos", "bad", "bad_messages"):
            setattr(tally, k, getattr(tally, k) + t[k])
        for k, v in t["by_recovery"].items():
            tally.by_recovery[k] = tally.by_recovery.get(k, 0) + v
        for k, v in t["by_end"].items():
            tally.by_end[k] = tally.by_end.get(k, 0) + v
        if proc.returncode != 0:
            return Failure("child failed:\n" + "\n".join(x for x in lines if not x.startswith("TALLY "))
                           + "\n" + proc.stderr[-3000:])
        if not args.quiet:
            print(f"[child {child_no}] examples {tally.examples}, frames {tally.frames}",
                  file=sys.stderr, flush=True)
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=0, help="stop after about N examples")
    ap.add_argument("--minutes", type=float, default=0.0, help="stop after M minutes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seed-offset", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=25, help="examples per hypothesis run")
    ap.add_argument("--fork-every", type=int, default=150,
                    help="examples per child process in long runs (0: all in this process)")
    ap.add_argument("--tally-json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--core-only", action="store_true",
                    help="reference and strict check only (no flowgraph): fast, for 10^5 cases")
    args = ap.parse_args(argv)
    if not args.examples and not args.minutes:
        args.examples = 200
    tally = Tally()
    t0 = time.monotonic()
    stop_at = t0 + args.minutes * 60.0 if args.minutes else float("inf")
    in_process = args.core_only or args.fork_every <= 0 or (args.examples and args.examples <= args.fork_every)
    if in_process:
        failure = fuzz(args, args.seed * 100003 + args.seed_offset,
                       args.examples or float("inf"), stop_at, tally)
    else:
        failure = fuzz_in_children(args, stop_at, tally)
    dt = time.monotonic() - t0
    if args.tally_json:
        import json
        print("TALLY " + json.dumps(vars(tally)))
    print(f"examples: {tally.examples}  failures: {1 if failure else 0}  frames: {tally.frames}  "
          f"seconds: {dt:.0f}  ({tally.examples / dt:.2f} examples/s)")
    print(f"by recovery: {tally.by_recovery}; by ending: {tally.by_end}; examples with frames "
          f"after the eos mark: {tally.post_eos}; packets refused: {tally.bad}; messages refused: "
          f"{tally.bad_messages}; skipped (reference > {MAX_FRAMES} frames): {tally.skipped}")
    if failure is not None:
        print(f"FAILURE: {failure}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
