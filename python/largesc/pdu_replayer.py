"""GNU Radio block: PDU Replayer (a recording file -> PDUs out on `pdus`, docs/recording.md).

Reads a file written by the PDU Recorder and publishes its PDUs (payload and the recorded
metadata, unchanged: `rx_time` and the sender's keys come back as they were) in file order,
either as fast as the flowgraph takes them or paced by the recorded times, then finishes, so
that a flowgraph of replayer -> LargeSC RX -> sink ends by itself (the recorded end-of-stream
PDU, if the recording has one, ends RX the way the live run ended; otherwise RX flushes after
its grace period once the replayer has finished).

Checks: the whole file is read once when the block is built. A missing file, a wrong header
(magic, version), a corrupt record (length out of range, CRC mismatch, malformed fields or
metadata) raise ValueError naming the file and the record's byte offset. A file that ends
inside its last record (a recorder killed mid-write) is accepted: that torn record is dropped,
logged and counted (`torn_records`). If the file changes between the check and the replay, the
replay stops at the first bad record with an error naming the file (`corrupt_records`), and
the block still finishes.

Pacing (pace=True): record k is published at start + (t_k - t_0), where t is the rx_time when
every record has one, else the host time of arrival (every record has that); a time that goes
backwards publishes at once. Gaps in the recording are replayed as they were.

Messages: out `pdus`, `stats` (counters, every `stats_interval` records and at the end).
"""
import threading
import time

import pmt
from gnuradio import gr

from .gr_support import params as P
from .gr_support import pdu_file as F
from .gr_support.pdu import DONE, PDUS, STATS, SYSTEM
from .gr_support.stats import RateLimitedLog, stats_to_pmt

NAME = "pdu_replayer"


class pdu_replayer(gr.basic_block):
    """Publish the PDUs of a recording, then finish.

    Parameters (checked at construction; a bad value raises ValueError naming it):
    record_file: a recording written by pdu_recorder (checked record by record here);
    pace: False = as fast as possible, True = at the recorded times (see the module doc);
    stats_interval: 1..10**6 records between `stats` messages.
    """

    def __init__(self, record_file="received.pdurec", pace=False, stats_interval=125):
        pace = P.check_bool(NAME, "pace", pace)
        stats_interval = P.check_int(NAME, "stats_interval", stats_interval, 1,
                                     P.MAX_STATS_INTERVAL, "records")
        if isinstance(record_file, bool):
            P.fail(NAME, "record_file", "a file path (str)", record_file)
        record_file = P.check_file(NAME, "record_file", record_file, allow_empty=False)
        try:
            info = F.scan(record_file)
        except F.RecordError as exc:
            P.fail(NAME, "record_file", f"a valid PDU recording ({exc})", record_file)
        except OSError as exc:
            P.fail(NAME, "record_file", f"a readable PDU recording ({exc})", record_file)
        gr.basic_block.__init__(self, name="largesc_pdu_replayer", in_sig=None, out_sig=None)
        self.record_file = record_file
        self.pace = pace
        self.stats_interval = stats_interval
        self.offsets = info["records"]
        sources = {s for s, _, _ in info["times"]}
        self.time_source = "rx_time" if sources == {F.TIME_RX} else "host"
        self.times = [t if self.time_source == "rx_time" else h for _, t, h in info["times"]]
        self.torn = info["torn"]
        self.counters = {"records": 0, "records_in_file": len(self.offsets), "bytes": 0,
                         "torn_records": 1 if self.torn else 0, "corrupt_records": 0,
                         "errors": 0, "finished": 0}
        self._log = RateLimitedLog(self.logger)
        if self.torn:
            off, have, need = self.torn
            self.logger.warn(f"pdu_replayer: {record_file} ends inside its last record (byte {off}: "
                             f"{have} of {need} bytes, a recorder stopped mid-write); that record "
                             f"is dropped, {len(self.offsets)} records are replayed")
        self._stop = threading.Event()
        self._thread = None
        self.message_port_register_out(PDUS)
        self.message_port_register_out(STATS)

    def start(self):
        self._stop.clear()
        self.counters.update(records=0, bytes=0, corrupt_records=0, errors=0, finished=0)
        self._thread = threading.Thread(target=self._run, name="pdu_replayer", daemon=True)
        self._thread.start()
        return True

    def stop(self):
        self._stop.set()
        th = self._thread
        if th is not None and th is not threading.current_thread():
            th.join(timeout=5.0)
        return True

    def _run(self):
        try:
            self._replay()
        except F.RecordError as exc:
            self.counters["corrupt_records"] += 1
            self.logger.error(f"pdu_replayer: replay stopped: {exc}")
        except Exception as exc:                            # noqa: BLE001 - thread: never escape
            self.counters["errors"] += 1
            self.logger.error(f"pdu_replayer: replay of {self.record_file} stopped: "
                              f"{type(exc).__name__}: {exc}")
        finally:
            self.counters["finished"] = 1
            try:
                self.message_port_pub(STATS, stats_to_pmt(self.get_stats()))
                if not self._stop.is_set():         # ends this block; GNU Radio tells downstream
                    self._post(SYSTEM, pmt.cons(DONE, pmt.from_long(1)))
            except Exception as exc:                        # noqa: BLE001
                self._log.warn("done", f"pdu_replayer: {exc}")

    def _replay(self):
        path = self.record_file
        with open(path, "rb") as f:
            F.read_header(f, path)
            t0 = None
            for i in range(len(self.offsets)):
                if self._stop.is_set():
                    return
                r = F.read_record(f, path, i)
                if r is None or isinstance(r, tuple):
                    raise F.RecordError(f"{path}: ends at record {i} of {len(self.offsets)} "
                                        "(the file changed after it was checked)")
                if self.pace:
                    now = time.monotonic()
                    if t0 is None:
                        t0 = (now, self.times[i])
                    delay = t0[0] + (self.times[i] - t0[1]) - now
                    if delay > 0 and self._stop.wait(delay):
                        return
                meta = r.meta()
                msg = pmt.cons(meta, pmt.init_u8vector(len(r.payload), list(r.payload)))
                self.message_port_pub(PDUS, msg)
                self.counters["records"] += 1
                self.counters["bytes"] += len(r.payload)
                if self.counters["records"] % self.stats_interval == 0:
                    self.message_port_pub(STATS, stats_to_pmt(self.get_stats()))

    def done(self):
        """True once the replay has ended (all records published, stopped, or an error)."""
        return bool(self.counters["finished"])

    def get_stats(self):
        """Counters: records published, records_in_file, payload bytes, torn_records (0/1),
        corrupt_records, errors, finished (0/1), and the pacing clock (time_source)."""
        c = dict(self.counters)
        c["time_source"] = self.time_source
        return c
