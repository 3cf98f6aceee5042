"""GNU Radio block: PDU Recorder (PDUs in on `pdus` -> a recording file, docs/recording.md).

Writes one record per PDU: the payload bytes, the whole metadata dict (GNU Radio's PMT
serialisation), and a time: the PDU's `rx_time` when its metadata has one (UHD's tag as
gr-pdu's Tagged Stream to PDU / Tags to PDU put it in the metadata: a tuple of full seconds
uint64 and fractional seconds double), otherwise the host's clock at arrival; each record says
which (`time_source` 1 = rx_time, 0 = host). The host time is recorded in every record as well.

GNU Radio 3.10.5 has no block that writes PDUs with their metadata to a file (Message Debug
prints or stores them in memory; File Sink and Tagged File Sink take streams, and a PDU to
Tagged Stream -> File Sink route loses the packet boundaries and the metadata), hence this block.

The file is created (truncated) when the flowgraph starts, not when the block is built, and
every record is flushed to the OS as it is written: a killed recorder leaves at most a torn
last record, which the replayer counts and drops. The end-of-stream PDU is recorded like any
other, so a replayed recording ends the receiver the same way.

Messages: in `pdus`; out `stats` (counters, every `stats_interval` records and at stop).
Non-PDU messages and PDUs that are not u8 vectors are counted and dropped.
"""
import os
import threading

import pmt
from gnuradio import gr

from .gr_support import params as P
from .gr_support import pdu_file as F
from .gr_support.pdu import PDUS, STATS
from .gr_support.stats import RateLimitedLog, stats_to_pmt

NAME = "pdu_recorder"


def check_output_file(block, name, path):
    """A path whose folder exists and is writable, and that is not a folder itself."""
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bool):
        P.fail(block, name, "a file path (str)", path)
    p = os.path.expanduser(os.fspath(path))
    if p == "":
        P.fail(block, name, "a file path (it is empty)", path)
    if p.endswith(os.sep) or os.path.isdir(p):
        P.fail(block, name, "a file path, not a folder", path)
    folder = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(folder):
        P.fail(block, name, f"a path in an existing folder ({folder} does not exist)", path)
    if not os.access(folder, os.W_OK) or (os.path.exists(p) and not os.access(p, os.W_OK)):
        P.fail(block, name, "a writable file", path)
    return p


class pdu_recorder(gr.basic_block):
    """Record PDUs with their metadata and receive time to a file.

    Parameters (checked at construction; a bad value raises ValueError naming it):
    record_file: the file to write (its folder must exist; an existing file is overwritten
    when the flowgraph starts); stats_interval: 1..10**6 records between `stats` messages.
    """

    def __init__(self, record_file="received.pdurec", stats_interval=125):
        stats_interval = P.check_int(NAME, "stats_interval", stats_interval, 1,
                                     P.MAX_STATS_INTERVAL, "records")
        record_file = check_output_file(NAME, "record_file", record_file)
        gr.basic_block.__init__(self, name="largesc_pdu_recorder", in_sig=None, out_sig=None)
        self.record_file = record_file
        self.stats_interval = stats_interval
        self.counters = {"records": 0, "bytes": 0, "rx_time": 0, "host_time": 0,
                         "bad_messages": 0, "write_errors": 0}
        self._lock = threading.Lock()
        self._f = None
        self._opened = False
        self._log = RateLimitedLog(self.logger)
        self.message_port_register_in(PDUS)
        self.set_msg_handler(PDUS, self.handle_pdu)
        self.message_port_register_out(STATS)

    def _open(self):
        """Create the file and write its header at the first start; a flowgraph started again
        after a stop appends to the same recording."""
        if self._f is not None:
            return True
        if self._opened is None:
            return False                                    # creating it failed: logged once
        try:
            if self._opened:
                self._f = open(self.record_file, "ab")
            else:
                f = open(self.record_file, "wb")
                f.write(F.header_bytes())
                f.flush()
                self._f = f
            self._opened = True
            return True
        except OSError as exc:
            self._opened = None
            self.counters["write_errors"] += 1
            self.logger.error(f"pdu_recorder: cannot write {self.record_file}: {exc}; "
                              "nothing more will be recorded")
            return False

    def start(self):
        with self._lock:
            self._open()
        return True

    def handle_pdu(self, msg):
        try:
            host = F.now()
            if not pmt.is_pair(msg):
                raise F.RecordError("not a PDU")
            meta, vec = pmt.car(msg), pmt.cdr(msg)
            if not pmt.is_u8vector(vec):
                raise F.RecordError("PDU payload is not a u8 vector")
            if not (pmt.is_null(meta) or pmt.is_dict(meta)):
                raise F.RecordError("PDU metadata is not a dict")
            payload = bytes(pmt.u8vector_elements(vec)) if pmt.length(vec) else b""
            meta_bytes = b"" if pmt.is_null(meta) else pmt.serialize_str(meta)
            rx = F.rx_time_of(meta)
            if rx is not None:
                source, (full, frac) = F.TIME_RX, rx
            else:
                source, (full, frac) = F.TIME_HOST, F.split_time(host)
            rec = F.encode_record(payload, meta_bytes, source, full, frac, host)
        except Exception as exc:                            # noqa: BLE001 - never escape
            self.counters["bad_messages"] += 1
            self._log.warn("bad", f"pdu_recorder: dropped a message ({exc}); "
                                  f"{self.counters['bad_messages']} so far")
            return
        with self._lock:
            if not self._open():
                self.counters["write_errors"] += 1
                return
            try:
                self._f.write(rec)
                self._f.flush()
            except (OSError, ValueError) as exc:      # disk full, file gone: stop recording, so
                self.counters["write_errors"] += 1     # a partial record stays the torn last one
                try:
                    self._f.close()
                except (OSError, ValueError):
                    pass
                self._f, self._opened = None, None
                self.logger.error(f"pdu_recorder: write to {self.record_file} failed: {exc}; "
                                  "nothing more will be recorded")
                return
            self.counters["records"] += 1
            self.counters["bytes"] += len(rec)
            self.counters["rx_time" if source == F.TIME_RX else "host_time"] += 1
            due = self.counters["records"] % self.stats_interval == 0
        if due:
            self.message_port_pub(STATS, stats_to_pmt(self.get_stats()))

    def stop(self):
        try:
            with self._lock:
                if self._f is not None:
                    self._f.close()
                    self._f = None
            self.message_port_pub(STATS, stats_to_pmt(self.get_stats()))
        except Exception as exc:                            # noqa: BLE001 - stop() must not raise
            self._log.warn("stop", f"stop: {exc}")
        return True

    def get_stats(self):
        """Counters: records, bytes written, records timed by rx_time / host, bad_messages,
        write_errors."""
        return dict(self.counters)
