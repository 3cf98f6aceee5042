"""GNU Radio block: the packet PHY's link deframing on the receiving side (packet_phy.py has the design)."""
import struct
import threading

import pmt
from gnuradio import gr

from .gr_support import params as P
from .gr_support.burst_time import time_tuple
from .gr_support.end_of_stream import EndOfStream, drain
from .gr_support.pdu import PDUS, SYSTEM, BadMessage, eos_frames, make_pdu, parse_pdu
from .gr_support.phy_framing import (
    EOS_SIM,
    FAIL,
    FEEDBACK,
    LINK_DONE,
    TYPE_DATA,
    TYPE_EOS,
    TYPE_FEEDBACK,
    TYPE_SYNC,
)
from .gr_support.stats import RateLimitedLog


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

    End of stream follows gr_support/end_of_stream.py with no grace period: its upstream blocks
    (crc_check, the framer's `eos_sim`) post nothing from stop(), so the last `done` is the end.
    """

    def __init__(self, eos_grace_s=1.0, end_on_eos=False, upstream_edges=2):
        name = "packet_phy_deframer"
        eos_grace_s = P.check_float(name, "eos_grace_s", eos_grace_s, 0.0, P.MAX_GRACE_S, what="s")
        end_on_eos = P.check_bool(name, "end_on_eos", end_on_eos)
        upstream_edges = P.check_int(name, "upstream_edges", upstream_edges, 1, P.MAX_EDGES)
        gr.basic_block.__init__(self, name="largesc_link_deframer", in_sig=None, out_sig=None)
        self.eos_grace_s = float(eos_grace_s)
        self.counters = {"packets": 0, "crc_fail": 0, "sync_bursts": 0, "eos_bursts": 0,
                         "eos_in_band": 0, "eos_sim": 0, "feedback": 0, "bad_messages": 0}
        self._lock = threading.Lock()
        self._eos_sent = False
        self._sim_eos = None
        self.end_on_eos = bool(end_on_eos)
        self.end = EndOfStream(0.0, upstream_edges)   # crc_check's ok and fail; +1 for eos_sim
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
        self.times = None                  # a gr_support.burst_time.BurstTimes when the PHY RX times packets

    def _timed(self, data):
        """{'rx_time': ...} for a packet the PHY RX timed (gr_support/burst_time.py), else {}; never raises."""
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
                        self.end.on_eos()
                        if self.end_on_eos:
                            self.end.finish(self)
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

    @property
    def upstream_edges(self) -> int:
        return self.end.edges

    @upstream_edges.setter
    def upstream_edges(self, n: int) -> None:        # packet_phy adds its eos_sim connection
        self.end.edges = int(n)

    def handle_fail(self, msg):
        self.counters["crc_fail"] += 1

    def handle_eos_sim(self, msg):
        self._sim_eos = msg

    def handle_system(self, msg):
        """`done` from the PHY: if no eos mark came in band, pass on the simulated one, then end.

        GNU Radio posts one `done` per incoming message edge and its own handler ends the block at
        the first, so this block counts them and ends at the last (the PHY's stream has ended),
        after the messages still queued (the eos burst crc_check posted ahead of the `done`)."""
        try:
            if not self.end.system(msg):
                self.gateway.system_handler(msg)
                return
            if not self.end.due() or self.end.ended:
                return
            drain(self, ((EOS_SIM, self.handle_eos_sim), (PDUS, self.handle_pdu), (FAIL, self.handle_fail)))
            with self._lock:
                if not self._eos_sent and self._sim_eos is not None:
                    meta, _ = parse_pdu(self._sim_eos)
                    self._eos_sent = True
                    self.counters["eos_sim"] += 1
                    n = eos_frames(meta)
                    self.message_port_pub(PDUS, make_pdu(b"", {"eos": True, "epoch": meta.get("epoch", 0),
                                                               **({"n_frames": n} if n is not None else {})}))
            self.end.finish(self)
        except Exception as exc:                            # noqa: BLE001
            self._bad("system", f"system message: {exc}")

    def start(self):
        self.end.reset()                  # a top block can be stopped and started again
        return True

    def _bad(self, kind, text=None):
        self.counters["bad_messages"] += 1
        self._log.warn(kind, f"dropped a message: {text or kind}")
