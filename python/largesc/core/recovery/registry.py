"""The one table of token-recovery strategies: what each is called, shown as, holds and needs.

Everything that lists strategies reads it: `build()` (core/recovery), the blocks' parameter
checks, the GRC YAML option lists (tests/test_structure.py checks they agree), the CLI's
`--recovery` choices, the evaluation, and the latency arithmetic (`latency`: frames a strategy
holds back). `auto` is not a strategy: it names the profile's measured best
(core/profiles.py AUTO_RECOVERY). Plain Python: importing this loads neither torch nor numpy.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Strategy:
    name: str
    label: str            # the GRC option label
    latency: int          # frames held back (the next frame is seen before a frame goes out)
    uses_lm: bool         # needs a profile with a recovery LM (core/profiles.py LM_PROFILES)
    uses_codec: bool      # works in the codec's quantizer space (needs the decoder's codec)


TABLE = (
    Strategy("moshi", "moshi (LM generation)", 1, True, False),
    Strategy("moshi-mmse", "moshi-mmse (LM, soft decision)", 1, True, True),
    Strategy("repeat", "repeat (last frame)", 0, False, False),
    Strategy("zero", "zero (fixed code)", 0, False, False),
    Strategy("prefix", "prefix (received codebooks only)", 0, False, False),
    Strategy("interp", "interp (latent interpolation)", 1, False, True),
    Strategy("latent", "latent (learned latent predictor)", 1, False, True),
)
REGISTRY = {s.name: s for s in TABLE}
STRATEGIES = tuple(REGISTRY)
LATENCY = {s.name: s.latency for s in TABLE}
AUTO = "auto"
AUTO_LABEL = "auto (measured best of the profile)"
CHOICES = (AUTO, *STRATEGIES)             # what users may pass: a strategy or `auto`
CHOICE_LABELS = (AUTO_LABEL, *(s.label for s in TABLE))
