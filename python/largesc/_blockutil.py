"""Small helpers shared by the GNU Radio blocks: counters, the `stats` port, rate-limited logs."""
import threading
import time

import pmt


class RateLimitedLog:
    """Log a message at most once per `interval_s` per key; counts what it suppressed."""

    def __init__(self, logger, interval_s: float = 5.0):
        self.logger, self.interval_s = logger, interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warn(self, key: str, msg: str) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) >= self.interval_s:
            extra = self._suppressed.pop(key, 0)
            self.logger.warn(msg + (f" ({extra} similar messages suppressed)" if extra else ""))
            self._last[key] = now
        else:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1


def stats_to_pmt(stats: dict):
    """Flat dict of numbers/strings -> PMT dict (for the `stats` message port)."""
    return pmt.to_pmt({str(k): v for k, v in stats.items()})


def publish_final_stats(block, port) -> None:
    """From a block's stop(): publish get_stats() on `port`; log instead of raising (stop() must not raise)."""
    try:
        block.message_port_pub(port, stats_to_pmt(block.get_stats()))
    except Exception as exc:                                # noqa: BLE001
        block._log.warn("stop", f"stop: {exc}")


class CodecBlock:
    """Mixin for the codec blocks (mimi_encoder, mimi_decoder): loads the codec, owns the
    streaming state (start/stop), the counters and the `stats` port (published every
    `stats_interval` frames and at stop)."""

    def _init_codec(self, profile, mimi_weights, device, num_threads, stats_interval, counters):
        from .core import codec as codec_mod
        self.codec = codec_mod.load_codec(profile, mimi_weights=mimi_weights or None, device=device)
        self.num_threads = int(num_threads)
        self.stats_interval = int(stats_interval)
        self.message_port_register_out(pmt.intern("stats"))
        self._log = RateLimitedLog(self.logger)
        self._stats = {"frames": 0, **{k: 0 for k in counters}}

    def start(self):
        self.codec.start_streaming()
        return True

    def stop(self):
        self.codec.stop_streaming()
        self.message_port_pub(pmt.intern("stats"), stats_to_pmt(self.get_stats()))
        return True

    def get_stats(self) -> dict:
        return dict(self._stats)

    def _count_frames(self, n: int) -> None:
        before = self._stats["frames"] // self.stats_interval
        self._stats["frames"] += n
        if self._stats["frames"] // self.stats_interval != before:
            self.message_port_pub(pmt.intern("stats"), stats_to_pmt(self.get_stats()))


class DoneGrace:
    """Mixin for message blocks that see GNU Radio's `done` on the `system` port before the
    in-band end-of-stream PDU (docs/architecture.md): hold `done` for `eos_grace_s`, then finish.

    The block sets `self.eos_grace_s`, `self.counters` and `self._log`, and routes `done` to
    `_start_grace(msg)` (first time) or `_finish()` (eos seen, or the grace timer fired: the
    timer re-posts `done` with value -1).
    """

    _timer = None
    _done_msg = None

    def _start_grace(self, msg) -> None:
        self._done_msg = msg
        self._timer = threading.Timer(self.eos_grace_s, self._post_timeout)
        self._timer.daemon = True
        self._timer.start()

    def _post_timeout(self) -> None:
        try:
            self._post(pmt.intern("system"), pmt.cons(pmt.intern("done"), pmt.from_long(-1)))
        except Exception:                                   # noqa: BLE001 - timer thread
            pass

    def _cancel_grace(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _finish(self) -> None:
        self._cancel_grace()
        self.gateway.system_handler(pmt.cons(pmt.intern("done"), pmt.from_long(1)))

    def _bad(self, kind, text=None) -> None:
        self.counters["bad_messages"] += 1
        self._log.warn(kind, f"dropped a message: {text or kind}")


def release_hier_blocks(*blocks) -> None:
    """Let a finished flowgraph's hier blocks (and with them its buffers) be freed.

    GNU Radio 3.10 never frees a hier block whose own message ports are connected inside it
    (message_port_register_hier_in/out + msg_connect(self, ...): a shared_ptr cycle, GNU Radio
    issue #7706), nor the flowgraph around it, whose stream buffers are SysV shared memory
    segments (4096 per machine by default). A process that runs many flowgraphs one after the
    other (tests, fuzzing, a loop over files) then fails with "shmget: No space left on
    device". Call this once the flowgraph has finished: it disconnects every hier block given
    and every hier block they hold (largesc_tx, largesc_rx, packet_phy), which breaks the cycle
    and cuts the shared memory a loopback run leaves behind from 48 to 16 maps (erasure
    channel; 136 to 36 with the PHY; the rest is held elsewhere in GNU Radio). The blocks cannot
    be run again; their counters stay readable. run_app.run() calls it.
    """
    from gnuradio import gr
    seen = set()

    def walk(block):
        if id(block) in seen:
            return
        seen.add(id(block))
        for value in list(vars(block).values()):
            if isinstance(value, gr.hier_block2) and not isinstance(value, gr.top_block):
                walk(value)
        block.disconnect_all()

    for b in blocks:
        if isinstance(b, gr.hier_block2) and not isinstance(b, gr.top_block):
            walk(b)
