"""Per-packet receive time for the Packet PHY RX: UHD's stream `rx_time` -> an `rx_time` per packet.

UHD's source tags `rx_time` (tuple of u64 full secs, f64 frac secs) and `rx_rate` only on the
first sample of a stream and after an overflow, not per burst, and GNU Radio's tagged-stream
access-code correlator (correlate_access_code_bb_ts) drops stream tags. Counting bits does not
give samples either: the demodulator's clock recovery slips symbols in the noise between bursts
(hundreds of samples over a second), though it places tags at the right symbol. So:

- `stream_time_tagger` (samples, before the demodulator) tags the time of every `period`-th sample,
  from the last `rx_time` and the sample count (tag `largesc_time`: full secs, frac secs, rate);
- GNU Radio's correlate_access_code_tag_bb marks each access code in the bit stream;
- `burst_time_stamper` (bits) reads the header and payload after each mark and files
  (payload bytes -> time of the access code's first sample) in a `BurstTimes` table, from the
  last `largesc_time` tag plus at most `period` samples counted in bits;
- the deframer looks each packet that passed the CRC up by its bytes and puts `rx_time` in its
  metadata.

Why not GNU Radio's Header/Payload Demux, which also stamps packets with `rx_time`: it counts
items since the last time tag in its own input, here the bit stream, which is the drift measured
above unless the time is re-tagged often (as stream_time_tagger does), and it would replace the
PHY's tested receive path (tagged-stream correlator, CRC) with a trigger and header-parser loop.
Beside the data path, the timing can only leave a packet untimed, never lose or delay it.

Accuracy: within 2 symbols, typically half a symbol (tests/test_phy.py, sps 2), plus the
transmitter-receiver clock difference (ppm). Without a stream time (simulation, a file source)
packets get no `rx_time`; after an overflow (a new `rx_time`) packets are untimed until the next
`largesc_time` tag.
"""
import collections
import threading

import numpy as np
import pmt
from gnuradio import gr

RX_TIME = pmt.intern("rx_time")
RX_RATE = pmt.intern("rx_rate")
TIME_KEY = pmt.intern("largesc_time")                       # (full secs, frac secs, sample rate)
RESET_KEY = pmt.intern("largesc_time_reset")                # a new stream time: forget the old one
SYNC_KEY = "largesc_sync"                                   # access-code marks (correlate_access_code_tag_bb)
SRCID = pmt.intern("largesc_stream_time_tagger")            # the stamper takes time tags from this source only
DEMOD_DELAY_BITS = 2.5                                      # GMSK demod: tags land this early (measured)
HEADER_BITS = 32                                            # header_format_default: length twice
MAX_OPEN = 16                                               # captures in progress (false syncs)
MAX_TIMES = 512                                             # filed times not yet looked up
MAX_AGE = 64                                                # filings after which an unclaimed time is stale
MAX_FULL_SECS = 2 ** 63                                     # full seconds must fit a u64 with room to add
MIN_RATE, MAX_RATE = 1.0, 1e9                               # Hz


def add_seconds(full: int, frac: float, dt: float):
    """(full, frac) + dt seconds -> (full, frac in [0, 1)), or None if it is negative or too large."""
    whole = int(np.floor(frac + dt))
    f = float(frac + dt - whole)
    if f >= 1.0:                                            # x - floor(x) rounds to 1.0 for tiny -x
        whole, f = whole + 1, 0.0
    full = full + whole
    if not np.isfinite(f) or full < 0 or full >= MAX_FULL_SECS:
        return None
    return full, f


def time_tuple(full: int, frac: float):
    """UHD's rx_time PMT: (u64 full secs, f64 frac secs in [0, 1))."""
    return pmt.make_tuple(pmt.from_uint64(int(full)), pmt.from_double(float(frac)))


def parse_time_tag(value):
    """(full secs, frac secs) from a UHD rx_time tag value, or None if it is malformed."""
    try:
        if not pmt.is_tuple(value) or pmt.length(value) != 2:
            return None
        a, b = pmt.tuple_ref(value, 0), pmt.tuple_ref(value, 1)
        full = pmt.to_uint64(a) if pmt.is_uint64(a) else pmt.to_long(a)
        frac = pmt.to_double(b)
        if not 0 <= full < MAX_FULL_SECS or not (0.0 <= frac < 1.0):
            return None
        return int(full), float(frac)
    except Exception:                                       # noqa: BLE001 - hostile tag
        return None


def parse_rate(value):
    """A sample rate in [MIN_RATE, MAX_RATE] Hz from a tag value, or None."""
    try:
        rate = pmt.to_double(value)
    except Exception:                                       # noqa: BLE001 - hostile tag
        return None
    return rate if np.isfinite(rate) and MIN_RATE <= rate <= MAX_RATE else None


class stream_time_tagger(gr.sync_block):
    """Complex samples in -> the same samples, with a `largesc_time` tag every `period` samples
    once the stream time is known (UHD's `rx_time`; rate from `rx_rate` or `samp_rate`). The bit
    stream is counted from the last tag, so `period` bounds the clock-recovery slips that count."""

    def __init__(self, period=128, samp_rate=0.0):
        gr.sync_block.__init__(self, name="largesc_stream_time_tagger", in_sig=[np.complex64],
                               out_sig=[np.complex64])
        self.period = int(period)
        self.samp_rate = float(samp_rate) if samp_rate and samp_rate > 0 else None
        self.counters = {"time_tags": 0, "bad_time_tags": 0}
        self.start()

    def start(self):
        self.rate = self.samp_rate
        self._ref = None                                    # (sample offset, full secs, frac secs)
        self._next = None                                   # next sample to tag
        return True

    def work(self, input_items, output_items):
        n = len(input_items[0])
        output_items[0][:] = input_items[0]
        start = self.nitems_read(0)
        for tag in sorted(self.get_tags_in_window(0, 0, n), key=lambda t: t.offset):
            if pmt.eq(tag.key, RX_TIME):
                t = parse_time_tag(tag.value)
                if t is None:
                    self.counters["bad_time_tags"] += 1
                    continue
                self.counters["time_tags"] += 1
                self._ref = (tag.offset, *t)
                self._next = tag.offset + self.period
                self.add_item_tag(0, tag.offset, RESET_KEY, pmt.PMT_T, SRCID)
            elif pmt.eq(tag.key, RX_RATE):
                rate = parse_rate(tag.value)
                if rate is None:
                    self.counters["bad_time_tags"] += 1
                else:
                    self.rate = rate
        if self._ref is not None and self.rate:
            if self._next < start:                          # the rate came late: no catch-up burst
                self._next += -(-(start - self._next) // self.period) * self.period
            while self._next < start + n:
                off, full, frac = self._ref
                t = add_seconds(full, frac, (self._next - off) / self.rate)
                if t is None:                               # out of range: untimed until a new rx_time
                    self.counters["bad_time_tags"] += 1
                    self._ref = None
                    self.add_item_tag(0, self._next, RESET_KEY, pmt.PMT_T, SRCID)
                    break
                value = pmt.make_tuple(pmt.from_uint64(t[0]), pmt.from_double(t[1]), pmt.from_double(self.rate))
                self.add_item_tag(0, self._next, TIME_KEY, value, SRCID)
                self._next += self.period
        return n


class BurstTimes:
    """Thread-safe table payload bytes -> receive times (FIFO per payload), bounded in size and
    age: a time not claimed within MAX_AGE later filings (its packet failed the CRC or was never
    looked up) is dropped, so an identical later packet never gets it."""

    def __init__(self, capacity=MAX_TIMES, max_age=MAX_AGE):
        self.capacity, self.max_age = int(capacity), int(max_age)
        self._times = collections.OrderedDict()             # payload -> deque of (filing no., time)
        self._count = 0
        self._filed = 0
        self._lock = threading.Lock()
        self.evicted = 0

    def _drop_oldest(self, key):
        q = self._times[key]
        q.popleft()
        self._count -= 1
        if not q:
            del self._times[key]

    def put(self, payload: bytes, t) -> None:
        with self._lock:
            self._filed += 1
            self._times.setdefault(payload, collections.deque()).append((self._filed, t))
            self._count += 1
            while self._count > self.capacity:              # captures no packet claimed (bit errors)
                self._drop_oldest(next(iter(self._times)))
                self.evicted += 1

    def take(self, payload: bytes):
        """The oldest fresh time filed for these bytes (removed), or None."""
        with self._lock:
            while self._times.get(payload):
                n, t = self._times[payload][0]
                self._drop_oldest(payload)
                if self._filed - n <= self.max_age:
                    return t
                self.evicted += 1
            return None

    def clear(self) -> None:
        with self._lock:
            self._times.clear()
            self._count = 0


class burst_time_stamper(gr.sync_block):
    """Bits in (unpacked bytes, after correlate_access_code_tag_bb) -> the same bits; files the
    time of each packet it can read whole in `table` (see the module docstring).

    Args:
        table: a BurstTimes shared with the deframer.
        sync_tag: the access-code mark's tag key (at the first bit after the access code).
        sps: samples per symbol of the demodulator (bits are symbols here).
        sync_bits: access-code length in bits.
        crc_bytes: trailing CRC bytes to drop from the key (the deframer sees payloads without them).
        max_payload_bytes: longer headers are taken for noise.
    """

    def __init__(self, table, sync_tag=SYNC_KEY, sps=2, sync_bits=64, crc_bytes=4, max_payload_bytes=4096):
        gr.sync_block.__init__(self, name="largesc_burst_time_stamper", in_sig=[np.uint8], out_sig=[np.uint8])
        if int(crc_bytes) < 1:
            raise ValueError("burst_time_stamper: crc_bytes must be >= 1")
        self.table = table
        self.sync_tag = pmt.intern(sync_tag)
        self.sps, self.sync_bits, self.crc_bytes = int(sps), int(sync_bits), int(crc_bytes)
        self.max_payload_bits = 8 * int(max_payload_bytes)
        self.counters = {"timed": 0, "untimed": 0, "bad_headers": 0}
        self.start()

    def start(self):
        self._ref = None                                    # (bit offset, full secs, frac secs, rate)
        self._open = []                                     # [time, bits so far, bits needed]
        self.table.clear()
        return True

    def _time_at(self, offset):
        """Time of the access code's first sample (see the module doc), or None."""
        ref_off, full, frac, rate = self._ref
        return add_seconds(full, frac, (offset - self.sync_bits - ref_off - DEMOD_DELAY_BITS) * self.sps / rate)

    def _feed(self, bits):
        """Append this chunk's bits to every open capture; file the finished ones."""
        still = []
        for t, got, need in self._open:
            pos = 0
            while True:
                take = bits[pos: pos + need - len(got)]
                pos += len(take)
                got = np.concatenate([got, take])
                if len(got) < need:
                    still.append([t, got, need])
                    break
                if need == HEADER_BITS:                     # header read: the payload length
                    n1, n2 = (int.from_bytes(np.packbits(got[i:i + 16]).tobytes(), "big") for i in (0, 16))
                    if n1 != n2 or n1 <= self.crc_bytes or 8 * n1 > self.max_payload_bits:
                        self.counters["bad_headers"] += 1
                        break
                    need = HEADER_BITS + 8 * n1
                    continue
                packet = np.packbits(got[HEADER_BITS:]).tobytes()
                self.table.put(packet[: len(packet) - self.crc_bytes], t)
                self.counters["timed"] += 1
                break
        self._open = still

    def _set_ref(self, tag):
        """Our tagger's time tag -> the reference; anything else (a forged tag) resets it."""
        try:
            if not pmt.eq(tag.srcid, SRCID):
                raise ValueError("not from stream_time_tagger")
            v = tag.value
            full, frac, rate = (pmt.to_uint64(pmt.tuple_ref(v, 0)), pmt.to_double(pmt.tuple_ref(v, 1)),
                                pmt.to_double(pmt.tuple_ref(v, 2)))
            if not (0 <= full < MAX_FULL_SECS and 0.0 <= frac < 1.0 and MIN_RATE <= rate <= MAX_RATE):
                raise ValueError("out of range")
            self._ref = (tag.offset, int(full), float(frac), float(rate))
        except Exception:                                   # noqa: BLE001 - hostile tag
            self._ref = None

    def work(self, input_items, output_items):
        x = input_items[0]
        n = len(x)
        output_items[0][:] = x
        start = self.nitems_read(0)
        cut = 0
        for tag in sorted(self.get_tags_in_window(0, 0, n), key=lambda t: t.offset):
            if pmt.eq(tag.key, TIME_KEY):
                self._set_ref(tag)
            elif pmt.eq(tag.key, RESET_KEY):
                self._ref = None
            elif pmt.eq(tag.key, self.sync_tag):
                i = tag.offset - start
                self._feed(x[cut:i])
                cut = i
                t = None if self._ref is None else self._time_at(tag.offset)
                if t is None:
                    self.counters["untimed"] += 1
                elif len(self._open) < MAX_OPEN:
                    self._open.append([t, np.zeros(0, np.uint8), HEADER_BITS])
        self._feed(x[cut:n])
        return n
