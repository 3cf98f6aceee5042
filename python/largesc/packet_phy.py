"""GNU Radio hier blocks: a GMSK packet PHY built from GNU Radio's own blocks, and its link framing.

    packet_phy_tx:  `pdus` -> PHY framing (type byte; sync, eos and flush bursts) -> CRC-32 append
                    (digital.crc_append) -> Protocol Formatter (header_format_default: 64-bit access
                    code + 16-bit length x 2) -> PDU to Tagged Stream x 4 (preamble, header,
                    payload, postamble) -> Tagged Stream Mux -> GMSK Mod -> Tagged Stream Multiply
                    Length (bytes -> samples: 8 x sps) -> Burst Shaper (ramp, zero guard before and
                    after) -> complex baseband bursts, `packet_len` tag in samples on each burst's
                    first sample (UHD sink tagged-stream mode: tsb_tag_name = packet_len).
    packet_phy_rx:  complex baseband -> (stream time tags) -> GMSK Demod -> (access-code marks,
                    burst times: _burst_time.py) -> Correlate Access Code - Tag Stream ->
                    Repack Bits 1 -> 8 -> Tagged Stream to PDU -> CRC Check (digital.crc_check;
                    failed packets are losses) -> PHY deframing (+ `rx_time` per packet when the
                    stream has UHD's time tag) -> `pdus`.
    packet_phy:     the loopback for simulations: packet_phy_tx -> channels.channel_model (AWGN at
                    an SNR, frequency offset, multipath taps normalised to unit energy) ->
                    packet_phy_rx. Packet loss comes from the PHY: bit errors fail the CRC or the
                    access-code correlation.
    packet_phy_framer / packet_phy_deframer: the link framing alone (message blocks), for byte
                    links without metadata such as UDP (network.socket_pdu) and for return links.

Link payload: one type byte before the LargeSC packet (0 data, 1 end of stream, 2 sync / flush
filler, 3 loss report), so the LargeSC packets travel unchanged and PDU metadata is not needed.
Overhead per packet: preamble + access code (8 bytes) + length header (4) + type (1) + CRC-32 (4)
+ postamble bytes, plus the zero guard samples around each burst; `overhead()` gives the numbers
and `get_stats()` counts them.

Acquisition and flush: GMSK Demod's clock recovery loses the first burst while it locks, so the
framer sends one sync burst before the first packet
(and every burst starts with preamble bytes 0x55 for the same reason after a gap of noise). The
demodulator's filters hold the last samples of the last burst, so after the end of stream the
framer sends a flush burst, and every burst ends with postamble bytes and guard samples.

End of stream: the sender's eos PDU (metadata `eos`, `n_frames`, `epoch`) travels in band as a
type-1 burst, `eos_copies` times (a PHY loses packets, and the receiver needs it to end with
every frame). The receiver passes the first copy on as an eos PDU. A lost eos mark would leave the
receiver waiting for its grace period and then flushing without knowing the frame count, so in
the simulated loopback (`packet_phy`) the framer also hands the mark to the deframer out of band
(`eos_sim`); the deframer uses it only when no in-band copy came through by the time the PHY's
stream has ended. A real link (USRP, separate hosts) runs live and has no end of stream to find.
Processes whose source never ends (network.socket_pdu): the deframer's `end_on_eos` ends it once
the mark is passed on, and its `done` output (no messages; GNU Radio posts `done` to the blocks
subscribed to a finished block) tells the socket to finish too.

The framer waits for the eos mark (or `eos_grace_s` after its upstream finished) before it lets
the PHY's stream end, as the erasure channel does: GNU Radio tells it that the controller finished
before the controller's stop() has sent the mark.
"""
import struct
import threading

import numpy as np
import pmt
from gnuradio import blocks, channels, digital, gr, pdu

from . import _params as P
from ._blockutil import DoneGrace, RateLimitedLog
from ._burst_time import SYNC_KEY, BurstTimes, burst_time_stamper, stream_time_tagger, time_tuple
from .packet_pdu import DONE, PDUS, SYSTEM, BadMessage, eos_frames, eos_pdu, is_eos, make_pdu, parse_pdu

LEN_TAG = "packet_len"
ACCESS_CODE = digital.packet_utils.default_access_code        # 64 bits
TYPE_DATA, TYPE_EOS, TYPE_SYNC, TYPE_FEEDBACK = 0, 1, 2, 3
CRC_BYTES = 4
HEADER_BYTES = len(ACCESS_CODE) // 8 + 4                      # access code + 16-bit length x 2
EOS_SIM = pmt.intern("eos_sim")
PREAMBLE = pmt.intern("preamble")
POSTAMBLE = pmt.intern("postamble")
FAIL = pmt.intern("fail")
FEEDBACK = pmt.intern("feedback")
LINK_DONE = pmt.intern("done")
MAX_PACKET_BYTES = 1400                # the PHY's length field has 12 bits; UDP keeps under the MTU
SYNC_PAYLOAD = bytes([TYPE_SYNC]) + bytes(range(0x30, 0x38))


MAX_SPS = 64
MIN_SAMP_RATE, MAX_SAMP_RATE = 1.0, 1e9                     # Hz (0: from UHD's rx_rate tag)
MAX_AMBLE = 64                         # preamble / postamble bytes
MAX_PADDING = 100000                   # guard samples
MAX_EOS_COPIES = 16
MAX_EDGES = 64


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


class packet_phy_framer(DoneGrace, gr.basic_block):
    """LargeSC PDUs in (`pdus`) -> link payloads out (`pdus`): a type byte before each packet;
    a sync burst before the first; the end-of-stream mark `eos_copies` times and a flush burst
    at the end. In `feedback`: loss reports (dict `loss_rate`, from LargeSC RX) sent as type-3
    payloads, for a return link. Out `preamble` / `postamble`: one PDU per burst for the PHY's
    tagged-stream mux (unused on UDP); `eos_sim`: the eos mark out of band (simulated loopback
    only); `done`: never carries a message, but GNU Radio tells the blocks connected to it when
    this block has finished (connect it to a Socket PDU that would otherwise never end).

    Works on any byte link: the GMSK PHY (packet_phy_tx) or UDP (network.socket_pdu).
    """

    def __init__(self, preamble_bytes=4, postamble_bytes=2, eos_copies=3, eos_grace_s=1.0):
        preamble_bytes, postamble_bytes, eos_copies, eos_grace_s = _check_framing(
            "packet_phy_framer", preamble_bytes, postamble_bytes, eos_copies, eos_grace_s)
        gr.basic_block.__init__(self, name="largesc_link_framer", in_sig=None, out_sig=None)
        self.preamble = bytes([0x55]) * int(preamble_bytes)
        self.postamble = bytes([0x55]) * int(postamble_bytes)
        self.eos_copies = max(1, int(eos_copies))
        self.eos_grace_s = float(eos_grace_s)
        self.counters = {"packets": 0, "bursts": 0, "bytes": 0, "sync_bursts": 0, "eos_bursts": 0,
                         "feedback": 0, "bad_messages": 0}
        self._lock = threading.Lock()
        self._synced = False
        self._eos_done = False
        self._done_msg = None
        self._timer = None
        self._log = RateLimitedLog(self.logger)
        self.message_port_register_in(PDUS)
        self.set_msg_handler(PDUS, self.handle_pdu)
        self.set_msg_handler(SYSTEM, self.handle_system)
        self.message_port_register_in(FEEDBACK)
        self.set_msg_handler(FEEDBACK, self.handle_feedback)
        for port in (PDUS, PREAMBLE, POSTAMBLE, EOS_SIM, LINK_DONE):
            self.message_port_register_out(port)

    def _burst(self, payload, key):
        self.message_port_pub(PREAMBLE, _u8pdu(self.preamble))
        self.message_port_pub(POSTAMBLE, _u8pdu(self.postamble))
        self.message_port_pub(PDUS, _u8pdu(payload))
        self.counters["bursts"] += 1
        self.counters["bytes"] += len(self.preamble) + HEADER_BYTES + len(payload) + CRC_BYTES \
            + len(self.postamble)
        if key:
            self.counters[key] += 1

    def _sync(self):
        if not self._synced:
            self._synced = True
            self._burst(SYNC_PAYLOAD, "sync_bursts")

    def handle_pdu(self, msg):
        try:
            meta, data = parse_pdu(msg)
            with self._lock:
                if self._eos_done:
                    return
                self._sync()
                if is_eos(meta):
                    n = eos_frames(meta)
                    epoch = meta.get("epoch", 0)
                    epoch = epoch if isinstance(epoch, int) and 0 <= epoch < 256 else 0
                    mark = bytes([TYPE_EOS]) + struct.pack(">IB", n if n is not None else 0xFFFFFFFF, epoch)
                    for _ in range(self.eos_copies):
                        self._burst(mark, "eos_bursts")
                    self._burst(SYNC_PAYLOAD, "sync_bursts")          # flushes the demodulator
                    self.message_port_pub(EOS_SIM, msg)
                    self._eos_done = True
                    if self._done_msg is not None:
                        self._finish()
                    return
                if not data:
                    raise BadMessage("empty")
                if len(data) > MAX_PACKET_BYTES:
                    raise BadMessage("too_long")
                self._burst(bytes([TYPE_DATA]) + data, "packets")
        except BadMessage as exc:
            self._bad(exc.reason)
        except Exception as exc:                            # noqa: BLE001 - never escape
            self._bad(type(exc).__name__, f"{type(exc).__name__}: {exc}")

    def handle_feedback(self, msg):
        """Loss report (dict with `loss_rate`) -> type-3 payload: float32 loss_rate, window_loss."""
        try:
            d = pmt.to_python(msg) if pmt.is_dict(msg) else None
            if not isinstance(d, dict) or not isinstance(d.get("loss_rate"), (int, float)):
                raise BadMessage("bad_feedback")
            w = d.get("window_loss", d["loss_rate"])
            body = struct.pack(">ff", float(d["loss_rate"]), float(w if isinstance(w, (int, float)) else -1))
            with self._lock:
                if not self._eos_done:
                    self._burst(bytes([TYPE_FEEDBACK]) + body, "feedback")
        except BadMessage as exc:
            self._bad(exc.reason)
        except Exception as exc:                            # noqa: BLE001 - never escape
            self._bad(type(exc).__name__, f"{type(exc).__name__}: {exc}")

    def handle_system(self, msg):
        """`done` from upstream: finish once the eos mark went out, or after the grace period."""
        try:
            if not (pmt.is_pair(msg) and pmt.eq(pmt.car(msg), DONE)):
                self.gateway.system_handler(msg)
                return
            with self._lock:
                if self._eos_done or pmt.to_long(pmt.cdr(msg)) == -1:
                    if not self._eos_done:                    # grace period over, no eos came
                        self._sync()
                        self._burst(SYNC_PAYLOAD, "sync_bursts")
                        self._eos_done = True
                    self._done_msg = msg
                    self._finish()
                elif self._done_msg is None:
                    self._start_grace(msg)
        except Exception as exc:                            # noqa: BLE001
            self._bad("system", f"system message: {exc}")

    def stop(self):
        self._cancel_grace()
        return True


class packet_phy_deframer(gr.basic_block):
    """Link payloads (`pdus`: PHY packets that passed the CRC, or UDP datagrams) -> LargeSC PDUs
    (`pdus`; the eos mark once, as an eos PDU) and loss reports (`feedback`, dict `loss_rate`,
    `window_loss`). In `fail`: packets whose CRC failed (counted); `eos_sim`: the simulated
    loopback's out-of-band eos mark. Out `done`: never carries a message; GNU Radio tells the
    blocks connected to it when this block has finished.

    end_on_eos: finish as soon as the eos mark has been passed on (a live source such as
    network.socket_pdu never ends by itself: connect `done` to it and the whole receiver
    process ends after the last frame). upstream_edges: message connections into this block
    (GNU Radio posts one `done` per connection); it ends after the last.
    """

    def __init__(self, eos_grace_s=1.0, end_on_eos=False, upstream_edges=2):
        name = "packet_phy_deframer"
        eos_grace_s = P.check_float(name, "eos_grace_s", eos_grace_s, 0.0, P.MAX_GRACE_S, what="s")
        end_on_eos = P.check_bool(name, "end_on_eos", end_on_eos)
        upstream_edges = P.check_int(name, "upstream_edges", upstream_edges, 1, MAX_EDGES)
        gr.basic_block.__init__(self, name="largesc_link_deframer", in_sig=None, out_sig=None)
        self.eos_grace_s = float(eos_grace_s)
        self.counters = {"packets": 0, "crc_fail": 0, "sync_bursts": 0, "eos_bursts": 0,
                         "eos_in_band": 0, "eos_sim": 0, "feedback": 0, "bad_messages": 0}
        self._lock = threading.Lock()
        self._eos_sent = False
        self._sim_eos = None
        self.end_on_eos = bool(end_on_eos)
        self.upstream_edges = int(upstream_edges)   # crc_check's ok and fail; +1 for eos_sim
        self._dones = 0
        self._log = RateLimitedLog(self.logger)
        for port in (PDUS, FAIL, EOS_SIM):
            self.message_port_register_in(port)
        self.set_msg_handler(PDUS, self.handle_pdu)
        self.set_msg_handler(FAIL, self.handle_fail)
        self.set_msg_handler(EOS_SIM, self.handle_eos_sim)
        self.set_msg_handler(SYSTEM, self.handle_system)
        self.message_port_register_out(PDUS)
        self.message_port_register_out(FEEDBACK)
        self.message_port_register_out(LINK_DONE)
        self._ended = False
        self.times = None                  # a _burst_time.BurstTimes when the PHY RX times packets

    def _timed(self, data):
        """{'rx_time': ...} for a packet the PHY RX timed (_burst_time.py), else {}; never raises."""
        try:
            t = self.times.take(data) if self.times is not None else None
            return {} if t is None else {"rx_time": time_tuple(*t)}
        except Exception:                                   # noqa: BLE001 - a time never costs a packet
            return {}

    def handle_pdu(self, msg):
        try:
            _, data = parse_pdu(msg)
            if not data:
                raise BadMessage("empty")
            kind, body = data[0], data[1:]
            timed = self._timed(data)
            with self._lock:
                if kind == TYPE_DATA and body:
                    self.counters["packets"] += 1
                    self.message_port_pub(PDUS, make_pdu(body, timed))
                elif kind == TYPE_EOS and len(body) == 5:
                    self.counters["eos_bursts"] += 1
                    n, epoch = struct.unpack(">IB", body)
                    if not self._eos_sent:
                        self._eos_sent = True
                        self.counters["eos_in_band"] += 1
                        meta = {"eos": True, "epoch": epoch, **timed}
                        if n != 0xFFFFFFFF:
                            meta["n_frames"] = n
                        self.message_port_pub(PDUS, make_pdu(b"", meta))
                        if self.end_on_eos:
                            self._end()
                elif kind == TYPE_FEEDBACK and len(body) == 8:
                    loss, window = struct.unpack(">ff", body)
                    if not (0.0 <= loss <= 1.0):
                        raise BadMessage("bad_feedback")
                    self.counters["feedback"] += 1
                    self.message_port_pub(FEEDBACK, pmt.to_pmt({"loss_rate": float(loss),
                                                                "window_loss": float(window)}))
                elif kind == TYPE_SYNC:
                    self.counters["sync_bursts"] += 1
                else:
                    raise BadMessage("bad_type")
        except BadMessage as exc:
            self._bad(exc.reason)
        except Exception as exc:                            # noqa: BLE001 - never escape
            self._bad(type(exc).__name__, f"{type(exc).__name__}: {exc}")

    def _end(self):
        if not self._ended:
            self._ended = True
            self.gateway.system_handler(pmt.cons(DONE, pmt.from_long(1)))

    def handle_fail(self, msg):
        self.counters["crc_fail"] += 1

    def _drain(self):
        """Handle the messages still queued. GNU Radio's scheduler serves a block's ports in an
        arbitrary (pointer) order, so the last `done` can be handled before the eos burst that
        crc_check posted ahead of it."""
        for port, handler in ((EOS_SIM, self.handle_eos_sim), (PDUS, self.handle_pdu),
                              (FAIL, self.handle_fail)):
            while self.nmsgs(port):
                msg = self.delete_head_nowait(port)
                if msg is None:
                    break
                handler(msg)

    def handle_eos_sim(self, msg):
        self._sim_eos = msg

    def handle_system(self, msg):
        """`done` from the PHY: if no eos mark came in band, pass on the simulated one, then end.

        GNU Radio posts one `done` per incoming message edge and its own handler ends the block at
        the first, so this block counts them and ends at the last (the PHY's stream has ended)."""
        try:
            if not (pmt.is_pair(msg) and pmt.eq(pmt.car(msg), DONE)):
                self.gateway.system_handler(msg)
                return
            self._dones += 1
            if self._dones < self.upstream_edges:
                return
            self._drain()
            with self._lock:
                if not self._eos_sent and self._sim_eos is not None:
                    meta, _ = parse_pdu(self._sim_eos)
                    self._eos_sent = True
                    self.counters["eos_sim"] += 1
                    n = eos_frames(meta)
                    self.message_port_pub(PDUS, make_pdu(b"", {"eos": True, "epoch": meta.get("epoch", 0),
                                                               **({"n_frames": n} if n is not None else {})}))
            self._end()
        except Exception as exc:                            # noqa: BLE001
            self._bad("system", f"system message: {exc}")

    def _bad(self, kind, text=None):
        self.counters["bad_messages"] += 1
        self._log.warn(kind, f"dropped a message: {text or kind}")


class packet_phy_tx(gr.hier_block2):
    """PDUs on `pdus` in -> GMSK bursts out (complex baseband, `packet_len` tag in samples).

    Message in `feedback`: loss reports (dict `loss_rate`) to send as well (a return link:
    LargeSC RX `feedback` -> this block -> radio -> packet_phy_rx `feedback` -> LargeSC TX).

    Args:
        sps: samples per symbol (GMSK, 1 bit per symbol; bit rate = sample rate / sps).
        bt: Gaussian filter bandwidth-time product.
        preamble_bytes / postamble_bytes: 0x55 bytes before the access code / after the CRC.
        pre_padding / post_padding: zero guard samples before / after each burst (Burst Shaper).
        ramp: samples of the up and down ramp (Hann) at the burst's edges.
        eos_copies: times the end-of-stream mark is sent.
        eos_grace_s: how long to wait for the eos mark after the upstream block finished.
    """

    def __init__(self, sps=2, bt=0.35, preamble_bytes=4, postamble_bytes=2, pre_padding=32,
                 post_padding=64, ramp=8, eos_copies=3, eos_grace_s=1.0):
        name = "packet_phy_tx"
        sps = P.check_int(name, "sps", sps, 2, MAX_SPS)
        bt = P.check_float(name, "bt", bt, 0.1, 1.0)
        preamble_bytes, postamble_bytes, eos_copies, eos_grace_s = _check_framing(
            name, preamble_bytes, postamble_bytes, eos_copies, eos_grace_s)
        pre_padding = P.check_int(name, "pre_padding", pre_padding, 0, MAX_PADDING, what="samples")
        post_padding = P.check_int(name, "post_padding", post_padding, 0, MAX_PADDING, what="samples")
        ramp = P.check_int(name, "ramp", ramp, 2, 8 * sps * min(preamble_bytes, postamble_bytes),
                           what="samples, within the preamble and the postamble")
        gr.hier_block2.__init__(self, "packet_phy_tx", gr.io_signature(0, 0, 0),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        self.sps = int(sps)
        self.params = dict(preamble_bytes=int(preamble_bytes), postamble_bytes=int(postamble_bytes),
                           sps=self.sps, pre_padding=int(pre_padding), post_padding=int(post_padding))
        self.framer = packet_phy_framer(preamble_bytes, postamble_bytes, eos_copies, eos_grace_s)
        self.crc = digital.crc_append(*crc32_args())
        self.formatter = digital.protocol_formatter_async(digital.header_format_default(ACCESS_CODE, 0))
        self.to_ts = [pdu.pdu_to_tagged_stream(gr.types.byte_t, LEN_TAG) for _ in range(4)]
        self.mux = blocks.tagged_stream_mux(gr.sizeof_char, LEN_TAG, 0)
        self.mod = digital.gmsk_mod(samples_per_symbol=self.sps, bt=bt)
        self.scale_len = blocks.tagged_stream_multiply_length(gr.sizeof_gr_complex, LEN_TAG, 8 * self.sps)
        taps = np.hanning(2 * ramp + 2)[1:-1].tolist()
        self.shaper = digital.burst_shaper_cc(taps, int(pre_padding), int(post_padding), False, LEN_TAG)

        self.message_port_register_hier_in("pdus")
        self.msg_connect(self, "pdus", self.framer, "pdus")
        self.message_port_register_hier_in("feedback")
        self.msg_connect(self, "feedback", self.framer, "feedback")
        self.msg_connect(self.framer, "preamble", self.to_ts[0], "pdus")
        self.msg_connect(self.framer, "pdus", self.crc, "in")
        self.msg_connect(self.crc, "out", self.formatter, "in")
        self.msg_connect(self.formatter, "header", self.to_ts[1], "pdus")
        self.msg_connect(self.formatter, "payload", self.to_ts[2], "pdus")
        self.msg_connect(self.framer, "postamble", self.to_ts[3], "pdus")
        for i, ts in enumerate(self.to_ts):
            self.connect(ts, (self.mux, i))
        self.connect(self.mux, self.mod, self.scale_len, self.shaper, self)

    def overhead(self):
        """{'bits', 'guard_symbols'} of PHY overhead per packet."""
        return overhead(**self.params)

    def get_stats(self):
        """Framer counters: packets, bursts (with sync / eos), bytes on air."""
        return dict(self.framer.counters)


class packet_phy_rx(gr.hier_block2):
    """Complex baseband in -> PDUs that passed the CRC out on `pdus`; loss reports that came
    over the air out on `feedback` (return links).

    Args:
        sps: samples per symbol (as the transmitter).
        threshold: access-code bits that may be wrong.
        eos_grace_s: unused by the receiver chain itself (kept for symmetry).
        samp_rate: sample rate in Hz for the packets' `rx_time`; 0 takes it from UHD's `rx_rate`
            tag. Each packet's metadata gets `rx_time` when the stream carries UHD's `rx_time`
            tag (_burst_time.py); a simulated or file stream has none.
    """

    def __init__(self, sps=2, threshold=4, eos_grace_s=1.0, samp_rate=0.0):
        name = "packet_phy_rx"
        sps = P.check_int(name, "sps", sps, 2, MAX_SPS)
        samp_rate = P.check_float(name, "samp_rate", samp_rate, 0.0, MAX_SAMP_RATE, what="Hz")
        if 0.0 < samp_rate < MIN_SAMP_RATE:
            raise ValueError(f"{name}: samp_rate must be 0 (from UHD's rx_rate tag) or "
                             f"{MIN_SAMP_RATE:g}..{MAX_SAMP_RATE:g} Hz, got {samp_rate!r}")
        threshold = P.check_int(name, "threshold", threshold, 0, 16, what="bits")
        eos_grace_s = P.check_float(name, "eos_grace_s", eos_grace_s, 0.0, P.MAX_GRACE_S, what="s")
        gr.hier_block2.__init__(self, "packet_phy_rx", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(0, 0, 0))
        self.demod = digital.gmsk_demod(samples_per_symbol=int(sps), gain_mu=0.175, mu=0.5,
                                        omega_relative_limit=0.005, freq_error=0.0)
        self.corr = digital.correlate_access_code_bb_ts(ACCESS_CODE, int(threshold), LEN_TAG)
        self.sync = digital.correlate_access_code_tag_bb(ACCESS_CODE, int(threshold), SYNC_KEY)
        self.times = BurstTimes()
        self.clock = stream_time_tagger(period=64 * int(sps), samp_rate=samp_rate)
        self.timer = burst_time_stamper(self.times, SYNC_KEY, sps=int(sps), sync_bits=len(ACCESS_CODE))
        self.pack = blocks.repack_bits_bb(1, 8, LEN_TAG, False, gr.GR_MSB_FIRST)
        self.to_pdu = pdu.tagged_stream_to_pdu(gr.types.byte_t, LEN_TAG)
        self.crc = digital.crc_check(*crc32_args(), True)
        for b in (self.sync, self.corr, self.crc):   # Debian's default log level (debug) would log
            b.set_log_level("info")              # every failed CRC; they are counted instead
        self.deframer = packet_phy_deframer(eos_grace_s)
        self.deframer.times = self.times
        self.connect(self, self.clock, self.demod, self.sync, self.timer, self.corr, self.pack, self.to_pdu)
        self.msg_connect(self.to_pdu, "pdus", self.crc, "in")
        self.msg_connect(self.crc, "ok", self.deframer, "pdus")
        self.msg_connect(self.crc, "fail", self.deframer, "fail")
        self.message_port_register_hier_out("pdus")
        self.msg_connect(self.deframer, "pdus", self, "pdus")
        self.message_port_register_hier_out("feedback")
        self.msg_connect(self.deframer, "feedback", self, "feedback")

    def get_stats(self):
        """Deframer counters (packets, crc_fail, sync / eos bursts, how the eos mark came) and
        packet timing (`timed` / `untimed` packet starts, stream `time_tags` seen)."""
        return {**self.deframer.counters, **self.timer.counters, **self.clock.counters}


class packet_phy(gr.hier_block2):
    """Simulated packet PHY loopback: PDUs in on `pdus` -> GMSK -> channel model -> PDUs out.

    Args:
        snr_db: SNR per sample in dB (unit-power signal; noise voltage 10^(-snr/20)).
        freq_offset: frequency offset, cycles per sample (channel_model's normalised offset).
        taps: multipath taps (normalised to unit energy here).
        seed: noise seed.  sps, bt, threshold, eos_copies: as packet_phy_tx / packet_phy_rx.
    """

    def __init__(self, snr_db=20.0, freq_offset=0.0, taps=(1.0,), seed=0, sps=2, bt=0.35,
                 threshold=4, eos_copies=3, eos_grace_s=1.0):
        name = "packet_phy"
        snr_db = check_snr(name, snr_db)
        freq_offset = check_freq_offset(name, freq_offset)
        taps = np.asarray(check_taps(name, taps), dtype=np.complex64)
        seed = P.check_int(name, "seed", seed, 0, P.MAX_SEED)
        sps = P.check_int(name, "sps", sps, 2, MAX_SPS)
        bt = P.check_float(name, "bt", bt, 0.1, 1.0)
        threshold = P.check_int(name, "threshold", threshold, 0, 16, what="bits")
        eos_copies = P.check_int(name, "eos_copies", eos_copies, 1, MAX_EOS_COPIES)
        eos_grace_s = P.check_float(name, "eos_grace_s", eos_grace_s, 0.0, P.MAX_GRACE_S, what="s")
        gr.hier_block2.__init__(self, "packet_phy", gr.io_signature(0, 0, 0), gr.io_signature(0, 0, 0))
        energy = float(np.sum(np.abs(taps) ** 2))
        self.taps = (taps / np.sqrt(energy)).tolist()
        self.snr_db = snr_db
        self.tx = packet_phy_tx(sps=sps, bt=bt, eos_copies=eos_copies, eos_grace_s=eos_grace_s)
        self.channel = channels.channel_model(noise_voltage=noise_voltage(snr_db),
                                              frequency_offset=float(freq_offset), epsilon=1.0,
                                              taps=self.taps, noise_seed=int(seed), block_tags=False)
        self.rx = packet_phy_rx(sps=sps, threshold=threshold, eos_grace_s=eos_grace_s)
        self.connect(self.tx, self.channel, self.rx)
        self.message_port_register_hier_in("pdus")
        self.msg_connect(self, "pdus", self.tx, "pdus")
        self.message_port_register_hier_out("pdus")
        self.msg_connect(self.rx, "pdus", self, "pdus")
        self.msg_connect(self.tx.framer, "eos_sim", self.rx.deframer, "eos_sim")
        self.rx.deframer.upstream_edges += 1

    def set_snr_db(self, snr_db):
        """SNR per sample in dB, at run time."""
        snr_db = check_snr("packet_phy", snr_db)
        self.snr_db = snr_db
        self.channel.set_noise_voltage(noise_voltage(snr_db))

    def set_freq_offset(self, freq_offset):
        """Frequency offset in cycles per sample, in (-0.5, 0.5), at run time."""
        self.channel.set_frequency_offset(check_freq_offset("packet_phy", freq_offset))

    def overhead(self):
        return self.tx.overhead()

    def get_stats(self):
        """{'tx': framer counters, 'rx': deframer counters, 'loss': data packets lost / sent}."""
        t, r = self.tx.get_stats(), self.rx.get_stats()
        loss = 1.0 - r["packets"] / t["packets"] if t["packets"] else 0.0
        return {"tx": t, "rx": r, "snr_db": self.snr_db, "loss": max(0.0, loss)}


def measure_loss(snr_db, packets=200, nbytes=19, freq_offset=0.0, taps=(1.0,), seed=0, timeout_s=60.0):
    """Send `packets` random `nbytes`-byte packets through packet_phy at `snr_db`, then the eos
    mark. Returns (sent, received intact, eos came in band, PHY counters)."""
    import time

    rng = np.random.default_rng(seed)
    payloads = [bytes(rng.integers(0, 256, nbytes, dtype=np.uint8)) for _ in range(packets)]
    tb = gr.top_block()
    phy = packet_phy(snr_db=snr_db, freq_offset=freq_offset, taps=list(taps), seed=seed + 1)
    sink = blocks.message_debug()
    tb.msg_connect(phy, "pdus", sink, "store")
    tb.start()
    for p in payloads:
        phy.tx.framer._post(PDUS, make_pdu(p, {}))
    phy.tx.framer._post(PDUS, eos_pdu(packets, 0))
    phy.tx.framer._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (phy.rx.deframer.counters["eos_in_band"]
                                               or phy.rx.deframer.counters["eos_sim"]):
        time.sleep(0.02)
    c = phy.rx.deframer.counters                          # let the sink take what the deframer sent
    while time.monotonic() < deadline and sink.num_messages() < c["packets"] + c["eos_in_band"] + c["eos_sim"]:
        time.sleep(0.02)
    tb.stop()
    tb.wait()
    got = set()
    for i in range(sink.num_messages()):
        msg = sink.get_message(i)
        if pmt.length(pmt.cdr(msg)):
            got.add(bytes(pmt.u8vector_elements(pmt.cdr(msg))))
    ok = sum(p in got for p in payloads)
    return packets, ok, bool(phy.rx.deframer.counters["eos_in_band"]), phy.get_stats()
