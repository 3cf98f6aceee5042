"""Adaptive controller: content importance, channel demand and the per-frame (N, R) allocation.

Per frame n the controller turns the encoder's latent activity (dB) into content importance
I_ns in [0, 1] (:class:`ActivityImportance`), the loss-rate estimate p into the channel demand
I_nc = min(1, p / p_sat) (:func:`channel_demand`), and then decides with :func:`allocate`:

- N_n: codebooks 0..N_n-1 of frame n to send (4..8; speech frames get more; with DTX,
  non-speech frames send `dtx_tokens` < 4);
- R_n: codebooks 0..R_n-1 of frame n-d to repeat in this packet (R_n <= N_{n-d}, <= 7).

Rules (docs/controller.md): token totals stay in 4..15 per frame without
DTX (550..2062.5 bps); the payload rate averaged over any window of `window` frames never
exceeds the budget B (:class:`RateWindow`); quiet frames leave credit that speech frames spend;
R grows with p; copies protect codebook 0 (semantic) first, then low acoustic codebooks, and
only frames that were speech. At B = 550 bps every frame already needs 4 tokens, so R = 0
there unless DTX frees budget.
"""
import math
from collections import deque
from dataclasses import dataclass
from itertools import accumulate
from typing import Deque, Optional

from .frames import NUM_CODEBOOKS, TOKEN_BPS

MIN_TOKENS = 4                  # tokens per frame without DTX (550 bps)
MAX_TOKENS = 15                 # 8 originals + 7 copies (2062.5 bps)
MAX_REPEAT = NUM_CODEBOOKS - 1
MAX_TEXT_SHARE = 0.5            # at most half of B for text on speech frames


class ActivityImportance:
    """Content importance I_ns from latent activity (dB): a sigmoid above an adaptive noise floor.

    The floor follows the minimum of the activity: it drops at once to a quieter frame and
    rises by `rise_db` per frame otherwise (minimum statistics). I_ns = sigmoid((a - floor -
    offset_db) / slope_db), held at >= 0.5 for `hangover` frames after a speech frame so word
    tails are not cut by DTX. Non-finite input gives the last value. The defaults are a GUESS
    until calibrated on Mimi latents of real speech; the rule is relative to the floor, so it
    does not depend on the latent's absolute scale. Replace this class by any object with
    ``update(activity_db) -> float`` (e.g. a learned predictor).
    """

    def __init__(self, offset_db: float = 12.0, slope_db: float = 2.0, rise_db: float = 0.05,
                 hangover: int = 2, floor_db: Optional[float] = None):
        self.offset_db, self.slope_db = float(offset_db), float(slope_db)
        self.rise_db, self.hangover = float(rise_db), int(hangover)
        self.floor_db = floor_db
        self.last = 0.0
        self._since_speech = self.hangover + 1

    def update(self, activity_db: float) -> float:
        a = float(activity_db)
        if not math.isfinite(a):
            return self.last
        self.floor_db = a if self.floor_db is None else min(a, self.floor_db + self.rise_db)
        z = (a - self.floor_db - self.offset_db) / self.slope_db
        i_ns = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))
        self._since_speech = 0 if i_ns >= 0.5 else self._since_speech + 1
        self.last = max(i_ns, 0.5) if self._since_speech <= self.hangover else i_ns
        return self.last


def channel_demand(p: float, p_sat: float = 0.3) -> float:
    """I_nc = min(1, p / p_sat): how much redundancy the channel asks for (0 when p = 0)."""
    if not math.isfinite(p) or p <= 0:
        return 0.0
    return min(1.0, p / p_sat)


@dataclass(frozen=True)
class Allocation:
    """Decision for one frame: N codebooks sent, R codebooks of frame n-d repeated."""
    n_send: int
    n_repeat: int
    importance: float
    demand: float
    text_tokens: int = 0        # token-equivalents of a text chunk sent with this frame (text.py)

    @property
    def tokens(self) -> int:
        return self.n_send + self.n_repeat


def allocate(importance: float, demand: float, target: int, room: int, n_prev: int,
             prev_speech: bool, speech_threshold: float = 0.5, dtx_tokens: Optional[int] = None
             ) -> tuple:
    """The allocation policy: (N, R) for one frame. Pure, small, and the one place to change.

    importance: I_ns of frame n; demand: I_nc; target: tokens this frame may aim for;
    room: hard cap from the rate window (>= the frame's minimum); n_prev: N of frame n-d;
    prev_speech: frame n-d was speech. Minimum: 4 tokens, or `dtx_tokens` on a non-speech
    frame when DTX is on. Up to `target` tokens (capped by `room`), the extra tokens go first to
    copies of frame n-d (round(demand * min(N_{n-d}, 7)), only if n-d was speech, semantic
    codebook first), then, on speech frames only, to more codebooks of frame n (up to 8).
    """
    speech = importance >= speech_threshold
    n_min = MIN_TOKENS if speech or dtx_tokens is None else int(dtx_tokens)
    cap = max(n_min, min(room, MAX_TOKENS))
    total = max(n_min, min(cap, target))
    r_max = min(n_prev, MAX_REPEAT) if prev_speech else 0
    r = min(int(math.floor(demand * r_max + 0.5)), total - n_min)
    n = n_min + min(total - n_min - r, NUM_CODEBOOKS - n_min) if speech else n_min
    return n, r


class RateWindow:
    """Sliding-window limit: token sums over any `window` consecutive frames <= window * B.

    `room()` is the most tokens frame n may take such that every future window can still give
    each later frame `floor_tokens` (4): so the limit never forces a frame below its minimum.
    """

    def __init__(self, budget_tokens: float, window: int, floor_tokens: int = MIN_TOKENS):
        if budget_tokens < floor_tokens - 1e-9:
            raise ValueError("budget below the per-frame minimum")
        self.window = int(window)
        self.cap = int(math.floor(budget_tokens * self.window + 1e-9))
        self.floor_tokens = floor_tokens
        self.hist: Deque[int] = deque(maxlen=max(1, self.window - 1))

    def room(self) -> int:
        # Window ending at frame n+k keeps history frames from position k-pad on (the pad
        # frames before the start count as 0), so
        #   room = min_k cap - sum(kept_k) - floor * k
        #        = cap - total - floor * pad + min(0, min_j sum_{i<j} (h_i - floor)).
        h, f = self.hist, self.floor_tokens
        pad = self.window - 1 - len(h)
        dips = min(accumulate(x - f for x in h), default=0)
        return self.cap - sum(h) - f * pad + min(0, dips)

    def push(self, tokens: int) -> None:
        if self.window > 1:
            self.hist.append(int(tokens))


class AdaptiveController:
    """Stateful controller: `step(activity_db, p)` -> Allocation for the next frame.

    bandwidth_bps: budget B (550..2062.5 bps useful; more is capped at 15 tokens);
    window: frames over which the average rate is held <= B; d: copy distance;
    dtx: send `dtx_tokens` (< 4) on non-speech frames. `importance` is any object with
    ``update(activity_db) -> float`` (default :class:`ActivityImportance`).
    text_share: the share of B that a text chunk may take from speech frames (0..0.5); silent
    frames give text their unused budget first (docs/text-channel.md). Text tokens count in the
    rate window like speech tokens, so speech + text stay within B.
    Counters: frames, tokens, speech_frames, dtx_frames, repeat_tokens, text_tokens,
    text_frames.
    """

    def __init__(self, bandwidth_bps: float = 1100.0, window: int = 25, d: int = 1,
                 dtx: bool = False, dtx_tokens: int = 1, p_sat: float = 0.3,
                 speech_threshold: float = 0.5, credit_frames: int = 4, importance=None,
                 text_share: float = 0.05):
        if not 0 <= dtx_tokens < MIN_TOKENS:
            raise ValueError("dtx_tokens must be in 0..3")
        if not 0.0 <= text_share <= MAX_TEXT_SHARE:
            raise ValueError(f"text_share must be in [0, {MAX_TEXT_SHARE}], got {text_share!r}")
        self.text_share = float(text_share)
        self.window, self.d = int(window), int(d)
        self.dtx, self.dtx_tokens = bool(dtx), int(dtx_tokens)
        self.p_sat, self.speech_threshold = float(p_sat), float(speech_threshold)
        self.credit_frames = max(1, int(credit_frames))
        self.importance = importance if importance is not None else ActivityImportance()
        self.set_bandwidth(bandwidth_bps)
        self._prev: Deque = deque(maxlen=self.d)         # (n_send, speech) of frames n-d..n-1
        self.counters = {"frames": 0, "tokens": 0, "speech_frames": 0, "dtx_frames": 0,
                         "repeat_tokens": 0, "text_tokens": 0, "text_frames": 0}

    def set_bandwidth(self, bandwidth_bps: float) -> None:
        """Change B. The rate window restarts: windows that straddle the change are bounded by
        neither the old nor the new B alone."""
        b = float(bandwidth_bps)
        if not math.isfinite(b) or b < MIN_TOKENS * TOKEN_BPS:
            raise ValueError(f"bandwidth must be >= {MIN_TOKENS * TOKEN_BPS} bps")
        self.bandwidth_bps = b
        self.budget_tokens = min(b / TOKEN_BPS, MAX_TOKENS)
        self.rate = RateWindow(self.budget_tokens, self.window)
        self.credit = 0.0
        self.text_credit = 0.0
        self.text_reserve = 0.0
        self._text_loan = False

    def step(self, activity_db: float, p: float = 0.0, importance: Optional[float] = None,
             text_tokens: int = 0) -> Allocation:
        """Allocate frame n. `importance` (I_ns) overrides the activity-based estimate.

        text_tokens: the cost of the text chunk waiting to go (0: none). While text waits, the
        text bank gets `text_share` of B every frame and all of a silent frame's unused budget;
        the chunk goes whole (Allocation.text_tokens) once the bank holds its cost, with speech
        aiming that much lower, and never beyond the rate window.
        """
        i_ns = self.importance.update(activity_db) if importance is None else float(importance)
        if not math.isfinite(i_ns):
            i_ns = 0.0
        i_nc = channel_demand(p, self.p_sat)
        n_prev, prev_speech = self._prev[0] if len(self._prev) == self.d else (0, False)
        # credit < 0 only after text borrowed from speech (see below): later frames repay it
        target = int(math.floor(self.budget_tokens + self.credit / self.credit_frames))
        room = self.rate.room()
        speech = i_ns >= self.speech_threshold
        want = max(0, int(text_tokens))
        b = self.budget_tokens
        if want and not self._text_loan:        # the first text: one window's share at once,
            self._text_loan = True              # which speech repays from its credit
            loan = self.text_share * b * self.window
            self.text_credit += loan
            self.credit -= loan
        reserve = want if want and self.text_credit >= want else 0
        n, r = allocate(i_ns, i_nc, target - reserve, room - reserve, n_prev, prev_speech,
                        self.speech_threshold, self.dtx_tokens if self.dtx else None)
        total = n + r
        moved = 0.0                     # this frame's budget that goes to the text bank
        if want:
            moved = self.text_share * b + (0.0 if speech else max(0.0, b - self.text_share * b - total))
            self.text_credit += moved
        text = want if want and want <= self.text_credit and want <= room - total else 0
        self.text_credit = min(self.text_credit - text, max(self.text_share * b * self.window, MAX_TOKENS))
        self.rate.push(total + text)
        self.credit = min(self.credit + b - total - moved, b * self.window)
        self._prev.append((n, speech))
        c = self.counters
        c["frames"] += 1
        c["tokens"] += total
        c["speech_frames"] += speech
        c["dtx_frames"] += n < MIN_TOKENS
        c["repeat_tokens"] += r
        c["text_tokens"] += text
        c["text_frames"] += text > 0
        return Allocation(n, r, i_ns, i_nc, text)

    def reserve_text(self, tokens: int) -> None:
        """Set `tokens` aside now for text sent later between frames (the end of over), paid by
        speech from its credit over the next frames: the end of over never adds to B."""
        t = max(0, int(tokens)) - self.text_reserve
        if t > 0:
            self.text_reserve += t
            self.credit -= t

    def spend_text(self, tokens: int) -> bool:
        """Text between frames (the end of over): take `tokens` from the reserve, the text bank
        and the unused budget, in that order, if they hold them; True if taken. Paid for
        earlier, so the over's mean rate stays <= B; the last window of `window` frames may
        hold these tokens beyond it (docs/text-channel.md)."""
        t = float(int(tokens))
        banks = [self.text_reserve, max(0.0, self.text_credit), max(0.0, self.credit)]
        if t > sum(banks) + 1e-9:
            return False
        take = [min(t, banks[0])]
        take.append(min(t - take[0], banks[1]))
        take.append(t - take[0] - take[1])
        self.text_reserve -= take[0]
        self.text_credit -= take[1]
        self.credit -= take[2]
        self.counters["text_tokens"] += int(t)
        return True

    def average_bps(self) -> float:
        """Mean payload rate so far (speech tokens and text, in token-equivalents)."""
        f = self.counters["frames"]
        return (self.counters["tokens"] + self.counters["text_tokens"]) * TOKEN_BPS / f if f else 0.0


DEFAULT_FEEDBACK_TIMEOUT = 125     # frames (10 s; the depacketizer reports every 12 frames)


class LossRateInput:
    """The loss rate p the controller uses, and what happens when the feedback channel goes silent.

    p is the configured value (block parameter, `set_loss_rate`, `ctrl`) until a receiver report
    arrives (`report`); the report then holds for `timeout_frames` frames. If no new report
    comes within that time (the return link is down, or the receiver stopped), the report
    expires and p goes back to the configured value, the safe default the operator chose for
    the link: a stale "no loss" report cannot keep protection off forever, and a stale burst
    report cannot keep spending the budget on copies. A later report applies again at once.
    `timeout_frames` = 0 keeps a report until the next one (no expiry). Setting the configured
    value also drops the current report (the new value applies from the next frame).
    Counters: reports, expired (reports that timed out).
    """

    def __init__(self, configured: float = 0.0, timeout_frames: int = DEFAULT_FEEDBACK_TIMEOUT):
        self.configured = float(configured)
        self.timeout_frames = int(timeout_frames)
        if self.timeout_frames < 0:
            raise ValueError(f"timeout_frames must be >= 0, got {timeout_frames}")
        self.feedback: Optional[float] = None
        self.age = 0                      # frames since the last report
        self.counters = {"reports": 0, "expired": 0}

    def set_configured(self, p: float) -> None:
        self.configured = float(p)
        self.feedback = None

    def report(self, p: float) -> None:
        self.feedback = float(p)
        self.age = 0
        self.counters["reports"] += 1

    @property
    def value(self) -> float:
        """p for the next frame."""
        return self.configured if self.feedback is None else self.feedback

    @property
    def from_feedback(self) -> bool:
        return self.feedback is not None

    def tick(self) -> float:
        """p for this frame; then one frame older (the report may expire after it)."""
        p = self.value
        if self.feedback is not None:
            self.age += 1
            if self.timeout_frames and self.age >= self.timeout_frames:
                self.feedback = None
                self.counters["expired"] += 1
        return p


def rate_report(activity_db, bandwidth_bps: float = 550.0, p: float = 0.0, dtx_tokens: int = 1,
                **kwargs) -> dict:
    """Mean payload rate of a clip's activity sequence without and with DTX (what DTX saves).

    Returns {'frames', 'speech_frames', 'bps', 'bps_dtx', 'saved_bps', 'saved_fraction'}.
    """
    plain = AdaptiveController(bandwidth_bps, dtx=False, **kwargs)
    dtx = AdaptiveController(bandwidth_bps, dtx=True, dtx_tokens=dtx_tokens, **kwargs)
    for a in activity_db:
        plain.step(a, p)
        dtx.step(a, p)
    bps, bps_dtx = plain.average_bps(), dtx.average_bps()
    return {"frames": plain.counters["frames"], "speech_frames": plain.counters["speech_frames"],
            "bps": bps, "bps_dtx": bps_dtx, "saved_bps": bps - bps_dtx,
            "saved_fraction": (bps - bps_dtx) / bps if bps else 0.0}
