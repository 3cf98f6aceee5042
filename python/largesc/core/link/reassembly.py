"""Receiver reassembly: hostile bytes in, every frame index out in order with per-codebook states.

A :class:`Reassembler` validates packets (core.link.packet), unwraps the sequence number,
merges originals with the repeated copies carried d frames later, and emits one
:class:`Frame` per frame index, in order:

- codebooks 0..N-1 of a frame whose own packet arrived: STATE_ORIGINAL; codebooks >= N:
  STATE_NOT_SENT (the allocation did not send them);
- frame whose packet is missing but whose copy (codebooks 0..R-1, in packet index+d) arrived:
  those codebooks STATE_COPY, the rest STATE_LOST (the receiver cannot know N of a lost packet);
- frame with nothing: every codebook STATE_LOST. Unknown token values are 0.

When a frame is final:

- its own packet arrived: at once (a copy holds only codebooks the original already has);
- sequence-clocked (default): once a packet with index >= frame + d_max arrived (so a copy
  in packet frame + d is used if it is overtaken by at most d_max - d - 1 later packets);
- clocked mode (live links): also once ``now >= anchor + index * frame_period + timeout``,
  where the anchor is set by the newest packet's arrival time, so frames are declared lost
  while the link is silent. ``now`` is wall time live or a frame/sample count in simulation;
- ``flush(until)`` (end of stream) ends all waits.

Sequence handling. A packet whose frames were all emitted is a duplicate when every one of
them was emitted as received with the same tokens (counted in ``duplicates``, dropped, no
other effect), else late (counted, dropped). A packet for frames still pending whose frames
were all received already is a duplicate too. A packet more than `max_jump` frames ahead of
the newest, behind the emitted window, or from another epoch is "far": it is held as a resync
candidate. `resync_packets` consecutive far packets that agree (same epoch, increasing
sequence within `max_jump`) make the receiver resync: a long outage (the frames in between
are emitted lost) or a sender restart (it flushes the old stream and starts the new one with
those packets). A sender restart is thus followed within `resync_packets` received packets of
the new epoch (default 2, i.e. 160 ms at one frame per packet without loss).

Clock slips (clocked mode). `resync_packets` consecutive late packets with rising indices
that are newer than every frame received so far (the sender's frame clock fell behind: its
audio stalled and the missed frames never came), or that carry other tokens than the frames
emitted at their indices (a sender restart), re-base the receiver: their frames are emitted
next. The output index (``Frame.index``) keeps counting, so no index is ever emitted twice;
``Frame.sender_index`` is the sender's frame index, which from then on is ``index - shift``
(``clock_slips`` counts the re-bases). Duplicates and stragglers of frames already emitted
(late packets older than the newest received frame) never slip the clock.

The sender's timeline. The receiver places packets on the sender's frame count, not only on
the sequence number, where it can: ``push(frame=...)`` (the sender's absolute frame index,
PDU metadata ``frame``, as the adaptive controller sends it) places a packet exactly, and
``push(rx_time=...)`` (its arrival time on the sender's clock, e.g. the PHY's ``rx_time``, in
the unit of `frame_period`) to within the sequence range; both are used relative to the newest
received packet that carried one. So outages of any length keep the timeline, and, with
`frame`, a file run (not clocked) starts at frame 0 however many leading packets were lost.
Without either (a link that delivers bare bytes): the first packet of a session starts the
output at frame 0 if its seq <= `join_window`, else at that packet (a late joiner), and a gap
is read from the sequence numbers, relative to the newest frame: less than half the modulus
ahead is an outage (v1: 2048 frames, compact: 256 frames = 20.5 s). Beyond that the compact
formats, which carry no epoch, read a far packet as an outage (the forward distance mod 512)
when not clocked (a file run has no restarts); v1 (and clocked mode, where the deadlines keep
the newest index in step with time) read it as a sender restart.

Packet formats (core.link.packet_formats): ``packet_format`` selects the parser and the
sequence modulus (v1: 12 bit, compact: 9 bit). `max_jump` (64) stays below half the modulus.
"""
import math
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from .frames import NUM_CODEBOOKS, STATE_COPY, STATE_LOST, STATE_NOT_SENT, STATE_ORIGINAL
from .packet import MAX_FPP, PacketError
from .packet_formats import DEFAULT_FORMAT, get_format

MAX_FLUSH = 1 << 16             # lost frames an end-of-stream flush or a gap may add (87 min of audio)
_ALL_LOST = (STATE_LOST,) * NUM_CODEBOOKS
_ZEROS = (0,) * NUM_CODEBOOKS


class Frame(NamedTuple):
    """One reassembled frame: tokens (0 where unknown), per-codebook STATE_* codes."""
    index: int                  # output frame index within `epoch` (consecutive)
    tokens: Tuple[int, ...]     # NUM_CODEBOOKS values
    states: Tuple[int, ...]     # NUM_CODEBOOKS STATE_* codes
    received: bool              # the frame's own packet arrived
    epoch: int = 0
    sender_index: Optional[int] = None  # the sender's frame index (= index unless a clock slip)


def frames_to_arrays(frames: List[Frame]) -> Tuple[np.ndarray, np.ndarray]:
    """Stack frames into core arrays: tokens int64 [K, F] and states uint8 [K, F]."""
    if not frames:
        return (np.zeros((NUM_CODEBOOKS, 0), np.int64), np.zeros((NUM_CODEBOOKS, 0), np.uint8))
    return (np.array([f.tokens for f in frames], np.int64).T.copy(),
            np.array([f.states for f in frames], np.uint8).T.copy())


def packet_hints(meta) -> Tuple[Optional[int], Optional[float]]:
    """(frame, rx_time seconds) from PDU metadata (a dict), each None when absent or malformed.

    `frame`: the sender's absolute frame index (a non-negative int); `rx_time`: UHD's
    (full secs, frac secs) tuple, or a number of seconds. Never raises.
    """
    frame = rx = None
    if not isinstance(meta, dict):
        return None, None
    f = meta.get("frame")
    if isinstance(f, int) and not isinstance(f, bool) and 0 <= f < 1 << 62:
        frame = f
    t = meta.get("rx_time")
    try:
        if isinstance(t, (tuple, list)) and len(t) == 2:
            full, frac = t
            if isinstance(full, int) and not isinstance(full, bool) and full >= 0 \
                    and isinstance(frac, (int, float)) and not isinstance(frac, bool) \
                    and 0.0 <= frac < 1.0:
                rx = float(full) + float(frac)
        elif isinstance(t, (int, float)) and not isinstance(t, bool):
            rx = float(t)
    except Exception:                                       # noqa: BLE001 - hostile metadata
        rx = None
    if rx is not None and not math.isfinite(rx):
        rx = None
    return frame, rx


class _Slot:
    __slots__ = ("tokens", "states", "received", "n")

    def __init__(self):
        self.tokens = [0] * NUM_CODEBOOKS
        self.states = list(_ALL_LOST)
        self.received = False
        self.n = 0                      # originals (N) of a received frame


class Reassembler:
    """Packet bytes in, ordered frames out. See the module docstring for the rules."""

    def __init__(self, d: int = 1, d_max: Optional[int] = None, clocked: bool = False,
                 frame_period: float = 1.0, timeout: Optional[float] = None,
                 join_window: int = 64, max_jump: int = 64, resync_packets: int = 2,
                 packet_format: str = DEFAULT_FORMAT):
        self.d = int(d)
        self.d_max = self.d if d_max is None else int(d_max)
        if self.d < 1 or self.d_max < self.d:
            raise ValueError("need 1 <= d <= d_max")
        self.clocked = bool(clocked)
        self.frame_period = float(frame_period)
        if not self.frame_period > 0:
            raise ValueError("frame_period must be > 0")
        self.timeout = float((self.d_max + 1) * self.frame_period if timeout is None else timeout)
        self.join_window = int(join_window)
        self.max_jump = max(int(max_jump), self.d_max + 1)
        self.resync_packets = max(1, int(resync_packets))
        self.format = get_format(packet_format)
        self._unpack = self.format.unpack
        self._mod = self.format.seq_mod
        self._half = self._mod // 2
        if self.max_jump >= self._half or self.join_window >= self._half:
            raise ValueError(f"max_jump, join_window and d_max must stay below {self._half} "
                             f"(half the {self.format.name} sequence range)")
        self._window = self.max_jump + MAX_FPP      # emitted frames remembered (duplicates)
        self.counters: Dict[str, int] = {
            "packets": 0, "accepted": 0, "bad": 0, "duplicates": 0, "late": 0, "far": 0,
            "resyncs": 0, "clock_slips": 0, "copies_used": 0, "copy_mismatch": 0, "frames_out": 0,
            "frames_lost": 0, "codebooks_copy": 0, "codebooks_lost": 0, "bad_hints": 0}
        self._epoch: Optional[int] = None
        self._next = 0
        self._high = -1
        self._rx_high = -1              # newest frame whose own packet arrived
        self._shift = 0                 # output index - sender index (clock slips)
        self._slots: Dict[int, _Slot] = {}
        self._done: Dict[int, tuple] = {}   # recently emitted received frames: sender index ->
        #                                     originals (by sender index: it holds across slips)
        self._anchor: Optional[float] = None
        self._frame_ref: Optional[Tuple[int, int]] = None   # (sender index, metadata frame)
        self._time_ref: Optional[Tuple[int, float]] = None  # (sender index, rx_time)
        self._cand: List = []           # resync candidate packets [(packet, now, hints)]
        self._late: List = []           # clocked mode: consecutive late packets [(packet, base, now)]
        self.last_error = ""            # reason of the last rejected packet

    # ---------------------------------------------------------------- input
    def push(self, data, now: Optional[float] = None, frame: Optional[int] = None,
             rx_time: Optional[float] = None) -> List[Frame]:
        """Feed one packet (any bytes); return the frames that became final, in order.

        now: time for clocked-mode deadlines; frame / rx_time: where the sender put the packet
        (its absolute frame index; its arrival time in `frame_period` units), if known."""
        self.counters["packets"] += 1
        try:
            pkt = self._unpack(data)
        except PacketError as exc:
            self.counters["bad"] += 1
            self.last_error = exc.reason
            key = "bad_" + exc.reason
            self.counters[key] = self.counters.get(key, 0) + 1
            return self._drain(now)
        hints = self._hints(pkt, frame, rx_time)
        out: List[Frame] = []
        if self._epoch is None:
            self._apply(pkt, self._start(pkt, hints), now, hints)
            return self._drain(now)
        base = self._place(pkt, hints)
        if base is None:                                  # far: maybe a sender restart
            out += self._candidate(pkt, now, hints)
            return out + self._drain(now)
        if not self._apply(pkt, base, now, hints):        # a duplicate changes nothing
            self._cand = []
        return out + self._drain(now)

    def tick(self, now: float) -> List[Frame]:
        """Clocked mode: emit the frames whose deadline passed at time `now`."""
        return self._drain(now)

    def flush(self, until: Optional[int] = None) -> List[Frame]:
        """End of stream: emit every pending frame, and lost frames up to the sender's frame
        `until`-1 (at most MAX_FLUSH frames past the newest packet, so a bad `until` cannot
        hang us)."""
        end = self._high + 1
        if until is not None:
            end = max(end, min(int(until) + self._shift, end + MAX_FLUSH))
        if self._epoch is None and until is not None:
            self._epoch = 0
        return self._emit_until(end)

    @property
    def next_index(self) -> int:
        """Output index of the next frame to be emitted."""
        return self._next

    # -------------------------------------------------------------- internals
    def _hints(self, pkt, frame, rx_time):
        """Validated (frame, rx_time) of a packet: a frame index that does not match the
        sequence number, or a time that is not a finite number, is dropped (``bad_hints``)."""
        if frame is not None:
            if not (isinstance(frame, (int, np.integer)) and not isinstance(frame, bool)
                    and 0 <= frame < 1 << 62 and frame % self._mod == pkt.seq):
                self.counters["bad_hints"] += 1
                frame = None
            else:
                frame = int(frame)
        if rx_time is not None:
            try:
                rx_time = float(rx_time)
            except (TypeError, ValueError, OverflowError):
                rx_time = None
            if rx_time is None or not math.isfinite(rx_time):
                self.counters["bad_hints"] += 1
                rx_time = None
        return frame, rx_time

    def _estimate(self, hints) -> Optional[float]:
        """Sender index of a packet's first frame from its hints, relative to the newest
        received packet that had the same kind of hint; None without one (or if absurd)."""
        frame, rx_time = hints
        est = None
        if frame is not None and self._frame_ref is not None:
            est = self._frame_ref[0] + (frame - self._frame_ref[1])
        elif rx_time is not None and self._time_ref is not None:
            est = self._time_ref[0] + (rx_time - self._time_ref[1]) / self.frame_period
        if est is not None and abs(est - (self._high - self._shift)) > MAX_FLUSH:
            return None
        return est

    def _unwrap(self, seq: int, center: float) -> int:
        """The sender index = seq (mod the sequence range) nearest `center`."""
        c = int(math.floor(center + 0.5))
        diff = (seq - c) % self._mod
        if diff >= self._half:
            diff -= self._mod
        return c + diff

    def _start(self, pkt, hints) -> int:
        """Start a session at `pkt`; returns its (output) index."""
        frame = hints[0]
        self._epoch = pkt.epoch
        first = pkt.seq if frame is None else frame
        if frame is not None and not self.clocked and frame <= MAX_FLUSH:
            self._next = 0                  # a file run keeps the sender's timeline from frame 0
        else:
            self._next = 0 if first <= self.join_window else first
        self._high = self._rx_high = self._next - 1
        self._shift = 0
        self._slots, self._done, self._late = {}, {}, []
        self._frame_ref = self._time_ref = None
        return first

    def _place(self, pkt, hints) -> Optional[int]:
        """Output index of the packet's first frame, or None if it is far/foreign."""
        if pkt.epoch != self._epoch:
            return None
        est = self._estimate(hints)
        ref = self._high if self._high >= 0 else self._next
        base = self._unwrap(pkt.seq, ref - self._shift if est is None else est) + self._shift
        if self._next - (base + len(pkt.frames) - 1) > self.max_jump:
            return None
        if base > self._high + self.max_jump:
            return None
        return base

    def _candidate(self, pkt, now, hints) -> List[Frame]:
        self.counters["far"] += 1
        if self._cand:
            prev = self._cand[-1][0]
            step = (pkt.seq - prev.seq) % self._mod
            if prev.epoch != pkt.epoch or not 0 < step <= self.max_jump:
                self._cand = []
        self._cand.append((pkt, now, hints))
        if len(self._cand) < self.resync_packets:
            return []
        cands, self._cand = self._cand, []
        first, _, first_hints = cands[0]
        self.counters["resyncs"] += 1
        out = []
        gap = self._outage(first, first_hints) if first.epoch == self._epoch and self._high >= 0 \
            else None
        if gap is not None:                # long outage: the gap frames are lost (emitted by
            self._high += gap - 1          # _drain once placed, so a copy in these packets counts)
            placed = [(p, self._place(p, h), t, h) for p, t, h in cands]
        else:
            out += self._emit_until(self._high + 1)        # restart: close the old stream
            placed = [(first, self._start(first, first_hints), cands[0][1], first_hints)]
            placed += [(p, self._place(p, h), t, h) for p, t, h in cands[1:]]
        for p, base, t, h in placed:
            if base is not None:
                self._apply(p, base, t, h)
        return out

    def _outage(self, pkt, hints) -> Optional[int]:
        """Frames from the newest one to a far packet of this epoch if it follows a long
        outage (> 0), or None if it is a sender restart (module docstring)."""
        high = self._high - self._shift                    # sender index of the newest frame
        est = self._estimate(hints)
        if est is not None:
            gap = self._unwrap(pkt.seq, est) - high
            return gap if 0 < gap <= MAX_FLUSH else None
        gap = (pkt.seq - high) % self._mod
        if gap == 0:
            return None
        if gap < self._half or (not self.format.has_epoch and not self.clocked):
            return gap
        return None

    def _is_dup(self, idx: int, pf) -> bool:
        """Frame `idx` of a packet was emitted as received with these tokens, or is pending as
        received already."""
        if self._done.get(idx - self._shift) == pf.tokens:
            return True
        if idx >= self._next:
            s = self._slots.get(idx)
            return s is not None and s.received
        return False

    def _apply(self, pkt, base: int, now, hints=(None, None)) -> bool:
        """Merge a placed packet; True if it was a duplicate (nothing changed)."""
        frames = pkt.frames
        if all(self._is_dup(base + j, pf) for j, pf in enumerate(frames)):
            self.counters["duplicates"] += 1
            return True
        if base + len(frames) <= self._next:
            self.counters["late"] += 1
            if self.clocked and self._slipped(pkt, base):
                self._clock_slip(pkt, base, now, hints)
            return False
        self._late = []
        self.counters["accepted"] += 1
        slots = self._slots
        newest = base + len(frames) - 1 > self._rx_high
        for j, pf in enumerate(frames):
            idx = base + j
            if idx >= self._next:
                s = slots.get(idx)
                if s is None:
                    s = slots[idx] = _Slot()
                if not s.received:
                    n = len(pf.tokens)
                    for k in range(n):
                        if s.states[k] == STATE_COPY and s.tokens[k] != pf.tokens[k]:
                            self.counters["copy_mismatch"] += 1
                    s.tokens[:n] = pf.tokens
                    s.tokens[n:] = _ZEROS[n:]
                    s.states = [STATE_ORIGINAL] * n + [STATE_NOT_SENT] * (NUM_CODEBOOKS - n)
                    s.received = True
                    s.n = n
                    if idx > self._rx_high:
                        self._rx_high = idx
            if pf.copies:
                self._apply_copy(idx - self.d, pf.copies)
            if idx > self._high:
                self._high = idx
                if now is not None:
                    self._anchor = now - idx * self.frame_period
        if newest:
            sender = base - self._shift
            if hints[0] is not None:
                self._frame_ref = (sender, hints[0])
            if hints[1] is not None:
                self._time_ref = (sender, hints[1])
        return False

    def _slipped(self, pkt, base: int) -> bool:
        """A late packet that may mean a clock slip: newer than every received frame, or other
        tokens than were emitted at all of its indices that were received (a restart). Not a
        straggler (older, lost frames) nor a packet that repeats any frame already emitted."""
        prevs = [self._done.get(base - self._shift + j) for j in range(len(pkt.frames))]
        if any(p == pf.tokens for p, pf in zip(prevs, pkt.frames)):
            return False
        return base > self._rx_high or any(p is not None for p in prevs)

    def _clock_slip(self, pkt, base: int, now, hints) -> None:
        """Clocked mode: `resync_packets` consecutive slip candidates (`_slipped`) with rising
        indices mean the sender's frame clock fell behind ours (or it restarted). Re-base on
        them: the frames they carry are emitted next, at the next output indices, adding that
        many frames of latency instead of losing every later packet as late."""
        if self._late and not 0 < base - self._late[-1][1] <= self.max_jump:
            self._late = []
        self._late.append((pkt, base, now, hints))
        if len(self._late) < self.resync_packets:
            return
        late, self._late = self._late, []
        self.counters["clock_slips"] += 1
        delta = self._next - late[0][1]
        self._shift += delta
        self._high = self._rx_high = self._next - 1
        self._slots = {}
        for p, b, t, h in late:
            self._apply(p, b + delta, t, h)

    def _apply_copy(self, idx: int, copies) -> None:
        if idx < self._next:
            return
        s = self._slots.get(idx)
        if s is None:
            s = self._slots[idx] = _Slot()
        if s.received:
            for k, t in enumerate(copies):
                if s.tokens[k] != t:
                    self.counters["copy_mismatch"] += 1
            return
        for k, t in enumerate(copies):
            if s.states[k] == STATE_LOST:
                s.tokens[k] = t
                s.states[k] = STATE_COPY

    def _drain(self, now) -> List[Frame]:
        out = []
        while True:
            idx = self._next
            s = self._slots.get(idx)
            if s is not None and s.received:
                pass
            elif idx + self.d_max <= self._high:
                pass
            elif (self.clocked and now is not None and self._anchor is not None
                  and now >= self._anchor + idx * self.frame_period + self.timeout):
                pass
            else:
                return out
            out.append(self._emit_one())

    def _emit_until(self, end: int) -> List[Frame]:
        out = []
        while self._next < end:
            out.append(self._emit_one())
        return out

    def _emit_one(self) -> Frame:
        idx = self._next
        s = self._slots.pop(idx, None)
        self._next = idx + 1
        if idx > self._high:
            self._high = idx
        c = self.counters
        c["frames_out"] += 1
        epoch = self._epoch or 0
        sender = idx - self._shift
        if s is None:
            c["frames_lost"] += 1
            c["codebooks_lost"] += NUM_CODEBOOKS
            return Frame(idx, _ZEROS, _ALL_LOST, False, epoch, sender)
        if s.received:
            done = self._done
            done.pop(sender, None)
            done[sender] = tuple(s.tokens[:s.n])
            if len(done) > self._window:
                del done[next(iter(done))]
        else:
            ncopy = s.states.count(STATE_COPY)
            c["copies_used"] += ncopy > 0
            c["codebooks_copy"] += ncopy
            c["codebooks_lost"] += NUM_CODEBOOKS - ncopy
            if ncopy == 0:
                c["frames_lost"] += 1
        return Frame(idx, tuple(s.tokens), tuple(s.states), s.received, epoch, sender)
