"""GNU Radio block: the packet PHY's link framing on the sending side (packet_phy.py has the design)."""
import struct
import threading

import pmt
from gnuradio import gr

from .gr_support.end_of_stream import EndOfStream, drain
from .gr_support.pdu import PDUS, SYSTEM, BadMessage, eos_frames, is_eos, parse_pdu
from .gr_support.phy_framing import (
    CRC_BYTES,
    EOS_SIM,
    FEEDBACK,
    HEADER_BYTES,
    LINK_DONE,
    MAX_PACKET_BYTES,
    POSTAMBLE,
    PREAMBLE,
    SYNC_PAYLOAD,
    TYPE_DATA,
    TYPE_EOS,
    TYPE_FEEDBACK,
    _check_framing,
    _u8pdu,
)
from .gr_support.stats import RateLimitedLog


class packet_phy_framer(gr.basic_block):
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
        self.end = EndOfStream(eos_grace_s)              # gr_support/end_of_stream.py
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
                    self.end.on_eos()
                    if self.end.due():
                        self.end.finish(self)
                    return
                self.end.on_message()
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
        """`done` from upstream: finish once the eos mark went out, or once no packet has come
        for the grace period (gr_support/end_of_stream.py)."""
        try:
            if not self.end.system(msg):
                self.gateway.system_handler(msg)
                return
            if not self.end.due():
                self.end.arm(self)
                return
            drain(self, ((PDUS, self.handle_pdu),))
            with self._lock:
                if not self._eos_done:                        # grace period over, no eos came
                    self._sync()
                    self._burst(SYNC_PAYLOAD, "sync_bursts")
                    self._eos_done = True
                self.end.finish(self)
        except Exception as exc:                            # noqa: BLE001
            self._bad("system", f"system message: {exc}")

    def _bad(self, kind, text=None):
        self.counters["bad_messages"] += 1
        self._log.warn(kind, f"dropped a message: {text or kind}")

    def start(self):
        self.end.reset()                  # a top block can be stopped and started again
        return True

    def stop(self):
        self.end.cancel()
        return True
