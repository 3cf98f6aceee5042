"""Mixin for the token codec blocks (mimi_encoder, mimi_decoder)."""

from . import gc_freeze
from .ports import STATS
from .stage_timing import StageObservers
from .stats import RateLimitedLog, stats_to_pmt


class CodecBlock:
    """Mixin for the codec blocks (mimi_encoder, mimi_decoder): loads the codec, owns the
    streaming state (start/stop), the counters and the `stats` port (published every
    `stats_interval` frames and at stop)."""

    def _init_codec(self, profile, mimi_weights, device, num_threads, stats_interval, counters, window=-1):
        from ..core import codec as codec_mod
        self.codec = codec_mod.load_codec(profile, mimi_weights=mimi_weights or None, device=device,
                                          window=None if window is None or int(window) < 0 else int(window))
        self.num_threads = int(num_threads)
        self.stats_interval = int(stats_interval)
        self.message_port_register_out(STATS)
        self._log = RateLimitedLog(self.logger)
        self._stats = {"frames": 0, **{k: 0 for k in counters}}
        self.stage_observers = StageObservers()   # compute time of each stream_encode/decode call

    def start(self):
        self.codec.start_streaming()
        if not getattr(self, "_heap_frozen", False):   # no full-GC pauses while streaming (gc_freeze.py)
            gc_freeze.freeze_heap()
            self._heap_frozen = True
        return True

    def stop(self):
        self.codec.stop_streaming()
        if getattr(self, "_heap_frozen", False):
            gc_freeze.thaw_heap()
            self._heap_frozen = False
        self.message_port_pub(STATS, stats_to_pmt(self.get_stats()))
        return True

    def get_stats(self) -> dict:
        return dict(self._stats)

    def _count_frames(self, n: int) -> None:
        before = self._stats["frames"] // self.stats_interval
        self._stats["frames"] += n
        if self._stats["frames"] // self.stats_interval != before:
            self.message_port_pub(STATS, stats_to_pmt(self.get_stats()))
