"""Receiver reassembly: hostile bytes in, every frame index out in order with per-codebook states.

A :class:`Reassembler` validates packets (core.link.packet), unwraps the 12-bit sequence number,
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

Sequence handling: packets older than the next frame to emit are late (counted, dropped);
duplicates are counted and ignored. A packet more than `max_jump` frames ahead of the newest,
behind the emitted window, or from another epoch is "far": it is held as a resync candidate.
`resync_packets` consecutive far packets that agree (same epoch, increasing sequence within
`max_jump`) make the receiver resync: it flushes the old stream and starts the new one with
those packets. A sender restart is thus followed within `resync_packets` received packets of
the new epoch (default 2, i.e. 160 ms at one frame per packet without loss).

Packet formats (core.link.packet_formats): ``packet_format`` selects the parser and the
sequence modulus (v1: 12 bit, compact: 9 bit). A sequence number is unwrapped relative to the
newest frame, so a packet is placed right while it lies less than half the modulus from it
(v1: 2048 frames, compact: 256 frames = 20.5 s); `max_jump` (64) stays below that half. The
compact formats carry no epoch (every packet reads as epoch 0): a sender restart is then seen
only through its sequence numbers (a jump ahead within 255 frames reads as lost frames, one
behind or farther as far packets that resync after `resync_packets`).
"""
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from .frames import NUM_CODEBOOKS, STATE_COPY, STATE_LOST, STATE_NOT_SENT, STATE_ORIGINAL
from .packet import PacketError
from .packet_formats import DEFAULT_FORMAT, get_format

MAX_FLUSH = 1 << 16             # lost frames an end-of-stream flush may add (87 min of audio)
_ALL_LOST = (STATE_LOST,) * NUM_CODEBOOKS
_ZEROS = (0,) * NUM_CODEBOOKS


class Frame(NamedTuple):
    """One reassembled frame: tokens (0 where unknown), per-codebook STATE_* codes."""
    index: int                  # sender frame index (unwrapped sequence) within `epoch`
    tokens: Tuple[int, ...]     # NUM_CODEBOOKS values
    states: Tuple[int, ...]     # NUM_CODEBOOKS STATE_* codes
    received: bool              # the frame's own packet arrived
    epoch: int = 0


def frames_to_arrays(frames: List[Frame]) -> Tuple[np.ndarray, np.ndarray]:
    """Stack frames into core arrays: tokens int64 [K, F] and states uint8 [K, F]."""
    if not frames:
        return (np.zeros((NUM_CODEBOOKS, 0), np.int64), np.zeros((NUM_CODEBOOKS, 0), np.uint8))
    return (np.array([f.tokens for f in frames], np.int64).T.copy(),
            np.array([f.states for f in frames], np.uint8).T.copy())


class _Slot:
    __slots__ = ("tokens", "states", "received")

    def __init__(self):
        self.tokens = [0] * NUM_CODEBOOKS
        self.states = list(_ALL_LOST)
        self.received = False


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
        self.counters: Dict[str, int] = {
            "packets": 0, "accepted": 0, "bad": 0, "duplicates": 0, "late": 0, "far": 0,
            "resyncs": 0, "clock_slips": 0, "copies_used": 0, "copy_mismatch": 0, "frames_out": 0,
            "frames_lost": 0, "codebooks_copy": 0, "codebooks_lost": 0}
        self._epoch: Optional[int] = None
        self._next = 0
        self._high = -1
        self._slots: Dict[int, _Slot] = {}
        self._anchor: Optional[float] = None
        self._cand: List = []           # resync candidate packets [(packet, now)]
        self._late: List = []           # clocked mode: consecutive late packets [(packet, base, now)]
        self.last_error = ""            # reason of the last rejected packet

    # ---------------------------------------------------------------- input
    def push(self, data, now: Optional[float] = None) -> List[Frame]:
        """Feed one packet (any bytes); return the frames that became final, in order."""
        self.counters["packets"] += 1
        try:
            pkt = self._unpack(data)
        except PacketError as exc:
            self.counters["bad"] += 1
            self.last_error = exc.reason
            key = "bad_" + exc.reason
            self.counters[key] = self.counters.get(key, 0) + 1
            return self._drain(now)
        out: List[Frame] = []
        if self._epoch is None:
            self._start(pkt)
        base = self._place(pkt)
        if base is None:                                  # far: maybe a sender restart
            out += self._candidate(pkt, now)
            return out + self._drain(now)
        self._cand = []
        self._apply(pkt, base, now)
        return out + self._drain(now)

    def tick(self, now: float) -> List[Frame]:
        """Clocked mode: emit the frames whose deadline passed at time `now`."""
        return self._drain(now)

    def flush(self, until: Optional[int] = None) -> List[Frame]:
        """End of stream: emit every pending frame, and lost frames up to index `until`-1
        (at most MAX_FLUSH frames past the newest packet, so a bad `until` cannot hang us)."""
        end = self._high + 1
        if until is not None:
            end = max(end, min(int(until), end + MAX_FLUSH))
        if self._epoch is None and until is not None:
            self._epoch = 0
        return self._emit_until(end)

    @property
    def next_index(self) -> int:
        """Index of the next frame to be emitted."""
        return self._next

    # -------------------------------------------------------------- internals
    def _start(self, pkt) -> None:
        self._epoch = pkt.epoch
        self._next = 0 if pkt.seq <= self.join_window else pkt.seq
        self._high = self._next - 1
        self._slots = {}

    def _place(self, pkt) -> Optional[int]:
        """Absolute index of the packet's first frame, or None if it is far/foreign."""
        if pkt.epoch != self._epoch:
            return None
        ref = self._high if self._high >= 0 else self._next
        diff = (pkt.seq - ref) % self._mod
        if diff >= self._half:
            diff -= self._mod
        base = ref + diff
        if self._next - (base + len(pkt.frames) - 1) > self.max_jump:
            return None
        if base > self._high + self.max_jump:
            return None
        return base

    def _candidate(self, pkt, now) -> List[Frame]:
        self.counters["far"] += 1
        if self._cand:
            prev = self._cand[-1][0]
            step = (pkt.seq - prev.seq) % self._mod
            if prev.epoch != pkt.epoch or not 0 < step <= self.max_jump:
                self._cand = []
        self._cand.append((pkt, now))
        if len(self._cand) < self.resync_packets:
            return []
        cands, self._cand = self._cand, []
        first = cands[0][0]
        self.counters["resyncs"] += 1
        out = []
        if first.epoch == self._epoch and self._high >= 0 and \
                0 < (first.seq - self._high) % self._mod < self._half:
            gap_end = self._high + (first.seq - self._high) % self._mod
            out += self._emit_until(gap_end)               # long outage: gap frames are lost
            self._high = gap_end - 1
        else:
            out += self._emit_until(self._high + 1)        # restart: close the old stream
            self._start(first)
        for p, t in cands:
            base = self._place(p)
            if base is not None:
                self._apply(p, base, t)
        return out

    def _apply(self, pkt, base: int, now) -> None:
        if base + len(pkt.frames) <= self._next:
            self.counters["late"] += 1
            if self.clocked:
                self._clock_slip(pkt, base, now)
            return
        self._late = []
        self.counters["accepted"] += 1
        slots = self._slots
        for j, pf in enumerate(pkt.frames):
            idx = base + j
            if idx >= self._next:
                s = slots.get(idx)
                if s is None:
                    s = slots[idx] = _Slot()
                if s.received:
                    self.counters["duplicates"] += 1
                else:
                    n = len(pf.tokens)
                    for k in range(n):
                        if s.states[k] == STATE_COPY and s.tokens[k] != pf.tokens[k]:
                            self.counters["copy_mismatch"] += 1
                    s.tokens[:n] = pf.tokens
                    s.tokens[n:] = _ZEROS[n:]
                    s.states = [STATE_ORIGINAL] * n + [STATE_NOT_SENT] * (NUM_CODEBOOKS - n)
                    s.received = True
            if pf.copies:
                self._apply_copy(idx - self.d, pf.copies)
            if idx > self._high:
                self._high = idx
                if now is not None:
                    self._anchor = now - idx * self.frame_period

    def _clock_slip(self, pkt, base: int, now) -> None:
        """Clocked mode: `resync_packets` consecutive late packets with rising indices mean the
        sender's frame clock fell behind ours (its audio stalled and the missed frames never
        came). Re-base on them: the frames they carry are emitted next, adding that many frames
        of latency instead of losing every later packet as late."""
        if self._late and not 0 < base - self._late[-1][1] <= self.max_jump:
            self._late = []
        self._late.append((pkt, base, now))
        if len(self._late) < self.resync_packets:
            return
        late, self._late = self._late, []
        self.counters["clock_slips"] += 1
        self._next = late[0][1]
        self._high = self._next - 1
        self._slots = {}
        for p, b, t in late:
            self._apply(p, b, t)

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
        if s is None:
            c["frames_lost"] += 1
            c["codebooks_lost"] += NUM_CODEBOOKS
            return Frame(idx, _ZEROS, _ALL_LOST, False, self._epoch or 0)
        if not s.received:
            ncopy = s.states.count(STATE_COPY)
            c["copies_used"] += ncopy > 0
            c["codebooks_copy"] += ncopy
            c["codebooks_lost"] += NUM_CODEBOOKS - ncopy
            if ncopy == 0:
                c["frames_lost"] += 1
        return Frame(idx, tuple(s.tokens), tuple(s.states), s.received, self._epoch or 0)
