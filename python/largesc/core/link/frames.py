"""Frame geometry and bit accounting shared by every part of gr-largesc.

One Mimi frame is 80 ms of 24 kHz audio (1920 samples) and carries up to 8 tokens of 11 bits,
codebook 0 semantic, 1..7 acoustic (coarse to fine). One token per frame costs 137.5 bps.
"""
SAMPLE_RATE = 24000
FRAME_SAMPLES = 1920
FRAME_RATE = SAMPLE_RATE / FRAME_SAMPLES          # 12.5 Hz
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE       # 0.08 s
NUM_CODEBOOKS = 8
CODEBOOK_SIZE = 2048
BITS_PER_TOKEN = 11
TOKEN_BPS = BITS_PER_TOKEN * FRAME_RATE           # 137.5 bps


def tokens_to_bps(tokens_per_frame: float) -> float:
    """Payload bit rate of a stream that sends `tokens_per_frame` tokens every frame."""
    return tokens_per_frame * TOKEN_BPS


def bps_to_tokens(bps: float) -> int:
    """Whole tokens per frame that fit in `bps` (floor)."""
    return int(bps // TOKEN_BPS)


def num_frames(num_samples: int) -> int:
    """Whole frames in `num_samples` samples at 24 kHz."""
    return num_samples // FRAME_SAMPLES


# Per-token state of a received frame, as the depacketizer emits it (uint8, one per codebook),
# and as token recovery reports what it did. "Lost" and "not sent" are different facts:
# a lost token was sent but no packet carrying it arrived; a not-sent token was above the
# allocation's N for that frame. A frame lost entirely has every codebook STATE_LOST.
STATE_ORIGINAL = 0    # received in the frame's own packet
STATE_COPY = 1        # received only through a repeated copy in a later packet (in-band UEP)
STATE_LOST = 2        # sent, never arrived
STATE_NOT_SENT = 3    # not sent by the controller (codebook >= N for that frame)
STATE_GENERATED = 4   # filled in by token recovery (model sample or baseline rule)
STATE_FALLBACK = 5    # filled in by the fallback strategy after a model error or deadline miss
STATE_NAMES = {STATE_ORIGINAL: "original", STATE_COPY: "copy", STATE_LOST: "lost",
               STATE_NOT_SENT: "not_sent", STATE_GENERATED: "generated", STATE_FALLBACK: "fallback"}
KNOWN_STATES = (STATE_ORIGINAL, STATE_COPY)
DECODABLE_STATES = KNOWN_STATES + (STATE_GENERATED, STATE_FALLBACK)


def decodable_prefixes(states):
    """Per frame, the number of leading codebooks a decoder can use (known or filled tokens).

    states: uint8 [F, K] -> int64 [F]; 0 when codebook 0 itself is unknown.
    """
    import numpy as np
    ok = np.isin(np.asarray(states), DECODABLE_STATES)
    return np.where(ok.all(axis=1), ok.shape[1], np.argmin(ok, axis=1)).astype(np.int64)
