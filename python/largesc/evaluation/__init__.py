"""`gr-largesc eval`: quality vs packet loss and bitrate for LargeSC, its ablations and baselines.

    python -m gnuradio.largesc.evaluation --preset quick --profile tiny --out docs/eval/quick-tiny
    python -m gnuradio.largesc.evaluation sweep --preset paper --shard 1/8 --out runs/paper
    python -m gnuradio.largesc.evaluation merge runs/paper --out runs/paper
    python -m gnuradio.largesc.evaluation prepare --set heldout

Needs the [eval] extra (requirements-eval.txt); the core package never imports this one.
"""
from .cli import main  # noqa: F401
