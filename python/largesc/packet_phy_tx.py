"""GNU Radio hier block: the GMSK packet PHY transmitter (packet_phy.py has the design)."""

import numpy as np
from gnuradio import blocks, digital, gr, pdu

from .gr_support import params as P
from .gr_support.phy_framing import ACCESS_CODE, LEN_TAG, MAX_PADDING, MAX_SPS, _check_framing, crc32_args, overhead
from .gr_support.ports import FEEDBACK_PORT, PDUS_PORT, POSTAMBLE_PORT, PREAMBLE_PORT
from .packet_phy_framer import packet_phy_framer


class packet_phy_tx(gr.hier_block2):
    """PDUs on `pdus` in -> GMSK bursts out (complex baseband, `packet_len` tag in samples).

    Message in `feedback`: loss reports (dict `loss_rate`) to send as well (a return link:
    LargeSC RX `feedback` -> this block -> radio -> packet_phy_rx `feedback` -> LargeSC TX).

    Args:
        sps: samples per symbol (GMSK, 1 bit per symbol; bit rate = sample rate / sps).
        bt: Gaussian filter bandwidth-time product.
        preamble_bytes / postamble_bytes: 0x55 bytes before the access code / after the CRC.
        pre_padding / post_padding: zero guard samples before / after each burst (Burst Shaper).
        ramp: samples of the up and down ramp (Hann) at the burst's edges.
        eos_copies: times the end-of-stream mark is sent.
        eos_grace_s: how long to wait for the eos mark after the upstream block finished.
    """

    def __init__(self, sps=2, bt=0.35, preamble_bytes=4, postamble_bytes=2, pre_padding=32,
                 post_padding=64, ramp=8, eos_copies=3, eos_grace_s=1.0):
        name = "packet_phy_tx"
        sps = P.check_int(name, "sps", sps, 2, MAX_SPS)
        bt = P.check_float(name, "bt", bt, 0.1, 1.0)
        preamble_bytes, postamble_bytes, eos_copies, eos_grace_s = _check_framing(
            name, preamble_bytes, postamble_bytes, eos_copies, eos_grace_s)
        pre_padding = P.check_int(name, "pre_padding", pre_padding, 0, MAX_PADDING, what="samples")
        post_padding = P.check_int(name, "post_padding", post_padding, 0, MAX_PADDING, what="samples")
        ramp = P.check_int(name, "ramp", ramp, 2, 8 * sps * min(preamble_bytes, postamble_bytes),
                           what="samples, within the preamble and the postamble")
        gr.hier_block2.__init__(self, "packet_phy_tx", gr.io_signature(0, 0, 0),
                                gr.io_signature(1, 1, gr.sizeof_gr_complex))
        self.sps = int(sps)
        self.params = dict(preamble_bytes=int(preamble_bytes), postamble_bytes=int(postamble_bytes),
                           sps=self.sps, pre_padding=int(pre_padding), post_padding=int(post_padding))
        self.framer = packet_phy_framer(preamble_bytes, postamble_bytes, eos_copies, eos_grace_s)
        self.crc = digital.crc_append(*crc32_args())
        self.formatter = digital.protocol_formatter_async(digital.header_format_default(ACCESS_CODE, 0))
        self.to_ts = [pdu.pdu_to_tagged_stream(gr.types.byte_t, LEN_TAG) for _ in range(4)]
        self.mux = blocks.tagged_stream_mux(gr.sizeof_char, LEN_TAG, 0)
        self.mod = digital.gmsk_mod(samples_per_symbol=self.sps, bt=bt)
        self.scale_len = blocks.tagged_stream_multiply_length(gr.sizeof_gr_complex, LEN_TAG, 8 * self.sps)
        taps = np.hanning(2 * ramp + 2)[1:-1].tolist()
        self.shaper = digital.burst_shaper_cc(taps, int(pre_padding), int(post_padding), False, LEN_TAG)

        self.message_port_register_hier_in(PDUS_PORT)
        self.msg_connect(self, PDUS_PORT, self.framer, PDUS_PORT)
        self.message_port_register_hier_in(FEEDBACK_PORT)
        self.msg_connect(self, FEEDBACK_PORT, self.framer, FEEDBACK_PORT)
        self.msg_connect(self.framer, PREAMBLE_PORT, self.to_ts[0], PDUS_PORT)
        self.msg_connect(self.framer, PDUS_PORT, self.crc, "in")
        self.msg_connect(self.crc, "out", self.formatter, "in")
        self.msg_connect(self.formatter, "header", self.to_ts[1], PDUS_PORT)
        self.msg_connect(self.formatter, "payload", self.to_ts[2], PDUS_PORT)
        self.msg_connect(self.framer, POSTAMBLE_PORT, self.to_ts[3], PDUS_PORT)
        for i, ts in enumerate(self.to_ts):
            self.connect(ts, (self.mux, i))
        self.connect(self.mux, self.mod, self.scale_len, self.shaper, self)

    def overhead(self):
        """{'bits', 'guard_symbols'} of PHY overhead per packet."""
        return overhead(**self.params)

    def get_stats(self):
        """Framer counters: packets, bursts (with sync / eos), bytes on air."""
        return dict(self.framer.counters)
