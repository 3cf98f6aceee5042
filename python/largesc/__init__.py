"""gr-largesc: LargeSC speech over lossy links, as a GNU Radio out-of-tree module.

`from gnuradio import largesc` gives the blocks (as gr_modtool modules do); core logic that
never touches GNU Radio lives in `gnuradio.largesc.core` (docs/architecture.md).
"""
import os

os.environ.setdefault("NO_TORCH_COMPILE", "1")   # before moshi is imported anywhere

from .adaptive_controller import adaptive_controller  # noqa: E402
from .depacketizer import depacketizer  # noqa: E402
from .largesc_rx import largesc_rx  # noqa: E402
from .largesc_tx import largesc_tx  # noqa: E402
from .mimi_decoder import mimi_decoder  # noqa: E402
from .mimi_encoder import mimi_encoder  # noqa: E402
from .packet_erasure_channel import packet_erasure_channel  # noqa: E402
from .packet_phy import packet_phy  # noqa: E402
from .packet_phy_deframer import packet_phy_deframer  # noqa: E402
from .packet_phy_framer import packet_phy_framer  # noqa: E402
from .packet_phy_rx import packet_phy_rx  # noqa: E402
from .packet_phy_tx import packet_phy_tx  # noqa: E402
from .pdu_recorder import pdu_recorder  # noqa: E402
from .pdu_replayer import pdu_replayer  # noqa: E402
from .stats_to_stream import stats_to_stream  # noqa: E402
from .token_recovery import token_recovery  # noqa: E402

__all__ = [
    "mimi_encoder",
    "mimi_decoder",
    "adaptive_controller",
    "packet_erasure_channel",
    "depacketizer",
    "token_recovery",
    "largesc_tx",
    "largesc_rx",
    "packet_phy_framer",
    "packet_phy_deframer",
    "packet_phy_tx",
    "packet_phy_rx",
    "packet_phy",
    "pdu_recorder",
    "pdu_replayer",
    "stats_to_stream",
]
