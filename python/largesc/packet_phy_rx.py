"""GNU Radio hier block: the GMSK packet PHY receiver (packet_phy.py has the design)."""

from gnuradio import blocks, digital, gr, pdu

from .gr_support import params as P
from .gr_support.burst_time import SYNC_KEY, BurstTimes, burst_time_stamper, stream_time_tagger
from .gr_support.phy_framing import ACCESS_CODE, LEN_TAG, MAX_SAMP_RATE, MAX_SPS, MIN_SAMP_RATE, crc32_args
from .gr_support.ports import FAIL_PORT, FEEDBACK_PORT, PDUS_PORT
from .packet_phy_deframer import packet_phy_deframer


class packet_phy_rx(gr.hier_block2):
    """Complex baseband in -> PDUs that passed the CRC out on `pdus`; loss reports that came
    over the air out on `feedback` (return links).

    Args:
        sps: samples per symbol (as the transmitter).
        threshold: access-code bits that may be wrong.
        eos_grace_s: unused by the receiver chain itself (kept for symmetry).
        samp_rate: sample rate in Hz for the packets' `rx_time`; 0 takes it from UHD's `rx_rate`
            tag. Each packet's metadata gets `rx_time` when the stream carries UHD's `rx_time`
            tag (gr_support/burst_time.py); a simulated or file stream has none.
    """

    def __init__(self, sps=2, threshold=4, eos_grace_s=1.0, samp_rate=0.0):
        name = "packet_phy_rx"
        sps = P.check_int(name, "sps", sps, 2, MAX_SPS)
        samp_rate = P.check_float(name, "samp_rate", samp_rate, 0.0, MAX_SAMP_RATE, what="Hz")
        if 0.0 < samp_rate < MIN_SAMP_RATE:
            raise ValueError(f"{name}: samp_rate must be 0 (from UHD's rx_rate tag) or "
                             f"{MIN_SAMP_RATE:g}..{MAX_SAMP_RATE:g} Hz, got {samp_rate!r}")
        threshold = P.check_int(name, "threshold", threshold, 0, 16, what="bits")
        eos_grace_s = P.check_float(name, "eos_grace_s", eos_grace_s, 0.0, P.MAX_GRACE_S, what="s")
        gr.hier_block2.__init__(self, "packet_phy_rx", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(0, 0, 0))
        self.demod = digital.gmsk_demod(samples_per_symbol=int(sps), gain_mu=0.175, mu=0.5,
                                        omega_relative_limit=0.005, freq_error=0.0)
        self.corr = digital.correlate_access_code_bb_ts(ACCESS_CODE, int(threshold), LEN_TAG)
        self.sync = digital.correlate_access_code_tag_bb(ACCESS_CODE, int(threshold), SYNC_KEY)
        self.times = BurstTimes()
        self.clock = stream_time_tagger(period=64 * int(sps), samp_rate=samp_rate)
        self.timer = burst_time_stamper(self.times, SYNC_KEY, sps=int(sps), sync_bits=len(ACCESS_CODE))
        self.pack = blocks.repack_bits_bb(1, 8, LEN_TAG, False, gr.GR_MSB_FIRST)
        self.to_pdu = pdu.tagged_stream_to_pdu(gr.types.byte_t, LEN_TAG)
        self.crc = digital.crc_check(*crc32_args(), True)
        for b in (self.sync, self.corr, self.crc):   # Debian's default log level (debug) would log
            b.set_log_level("info")              # every failed CRC; they are counted instead
        self.deframer = packet_phy_deframer(eos_grace_s)
        self.deframer.times = self.times
        self.connect(self, self.clock, self.demod, self.sync, self.timer, self.corr, self.pack, self.to_pdu)
        self.msg_connect(self.to_pdu, PDUS_PORT, self.crc, "in")          # gr-pdu and crc_check: their own port names
        self.msg_connect(self.crc, "ok", self.deframer, PDUS_PORT)
        self.msg_connect(self.crc, "fail", self.deframer, FAIL_PORT)
        self.message_port_register_hier_out(PDUS_PORT)
        self.msg_connect(self.deframer, PDUS_PORT, self, PDUS_PORT)
        self.message_port_register_hier_out(FEEDBACK_PORT)
        self.msg_connect(self.deframer, FEEDBACK_PORT, self, FEEDBACK_PORT)

    def get_stats(self):
        """Deframer counters (packets, crc_fail, sync / eos bursts, how the eos mark came) and
        packet timing (`timed` / `untimed` packet starts, stream `time_tags` seen)."""
        return {**self.deframer.counters, **self.timer.counters, **self.clock.counters}
