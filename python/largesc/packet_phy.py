"""GNU Radio hier blocks: a GMSK packet PHY built from GNU Radio's own blocks, and its link framing.

    packet_phy_tx:  `pdus` -> PHY framing (type byte; sync, eos and flush bursts) -> CRC-32 append
                    (digital.crc_append) -> Protocol Formatter (header_format_default: 64-bit access
                    code + 16-bit length x 2) -> PDU to Tagged Stream x 4 (preamble, header,
                    payload, postamble) -> Tagged Stream Mux -> GMSK Mod -> Tagged Stream Multiply
                    Length (bytes -> samples: 8 x sps) -> Burst Shaper (ramp, zero guard before and
                    after) -> complex baseband bursts, `packet_len` tag in samples on each burst's
                    first sample (UHD sink tagged-stream mode: tsb_tag_name = packet_len).
    packet_phy_rx:  complex baseband -> (stream time tags) -> GMSK Demod -> (access-code marks,
                    burst times: gr_support/burst_time.py) -> Correlate Access Code - Tag Stream ->
                    Repack Bits 1 -> 8 -> Tagged Stream to PDU -> CRC Check (digital.crc_check;
                    failed packets are losses) -> PHY deframing (+ `rx_time` per packet when the
                    stream has UHD's time tag) -> `pdus`.
    packet_phy:     the loopback for simulations: packet_phy_tx -> channels.channel_model (AWGN at
                    an SNR, frequency offset, multipath taps normalised to unit energy) ->
                    packet_phy_rx. Packet loss comes from the PHY: bit errors fail the CRC or the
                    access-code correlation.
    packet_phy_framer / packet_phy_deframer: the link framing alone (message blocks), for byte
                    links without metadata such as UDP (network.socket_pdu) and for return links.

Link payload: one type byte before the LargeSC packet (0 data, 1 end of stream, 2 sync / flush
filler, 3 loss report), so the LargeSC packets travel unchanged and PDU metadata is not needed.
Overhead per packet: preamble + access code (8 bytes) + length header (4) + type (1) + CRC-32 (4)
+ postamble bytes, plus the zero guard samples around each burst; `overhead()` gives the numbers
and `get_stats()` counts them.

Acquisition and flush: GMSK Demod's clock recovery loses the first burst while it locks, so the
framer sends one sync burst before the first packet
(and every burst starts with preamble bytes 0x55 for the same reason after a gap of noise). The
demodulator's filters hold the last samples of the last burst, so after the end of stream the
framer sends a flush burst, and every burst ends with postamble bytes and guard samples.

End of stream: the sender's eos PDU (metadata `eos`, `n_frames`, `epoch`) travels in band as a
type-1 burst, `eos_copies` times (a PHY loses packets, and the receiver needs it to end with
every frame). The receiver passes the first copy on as an eos PDU. A lost eos mark would leave the
receiver waiting for its grace period and then flushing without knowing the frame count, so in
the simulated loopback (`packet_phy`) the framer also hands the mark to the deframer out of band
(`eos_sim`); the deframer uses it only when no in-band copy came through by the time the PHY's
stream has ended. A real link (USRP, separate hosts) runs live and has no end of stream to find.
Processes whose source never ends (network.socket_pdu): the deframer's `end_on_eos` ends it once
the mark is passed on, and its `done` output (no messages; GNU Radio posts `done` to the blocks
subscribed to a finished block) tells the socket to finish too.

The framer waits for the eos mark (or `eos_grace_s` after its upstream finished) before it lets
the PHY's stream end, as the erasure channel does: GNU Radio tells it that the controller finished
before the controller's stop() has sent the mark.
"""

import numpy as np
from gnuradio import channels, gr

from .gr_support import params as P
from .gr_support.phy_framing import MAX_EOS_COPIES, MAX_SPS, check_freq_offset, check_snr, check_taps, noise_voltage
from .gr_support.ports import EOS_SIM_PORT, PDUS_PORT
from .packet_phy_rx import packet_phy_rx
from .packet_phy_tx import packet_phy_tx


class packet_phy(gr.hier_block2):
    """Simulated packet PHY loopback: PDUs in on `pdus` -> GMSK -> channel model -> PDUs out.

    Args:
        snr_db: SNR per sample in dB (unit-power signal; noise voltage 10^(-snr/20)).
        freq_offset: frequency offset, cycles per sample (channel_model's normalised offset).
        taps: multipath taps (normalised to unit energy here).
        seed: noise seed.  sps, bt, threshold, eos_copies: as packet_phy_tx / packet_phy_rx.
    """

    def __init__(self, snr_db=20.0, freq_offset=0.0, taps=(1.0,), seed=0, sps=2, bt=0.35,
                 threshold=4, eos_copies=3, eos_grace_s=1.0):
        name = "packet_phy"
        snr_db = check_snr(name, snr_db)
        freq_offset = check_freq_offset(name, freq_offset)
        taps = np.asarray(check_taps(name, taps), dtype=np.complex64)
        seed = P.check_int(name, "seed", seed, 0, P.MAX_SEED)
        sps = P.check_int(name, "sps", sps, 2, MAX_SPS)
        bt = P.check_float(name, "bt", bt, 0.1, 1.0)
        threshold = P.check_int(name, "threshold", threshold, 0, 16, what="bits")
        eos_copies = P.check_int(name, "eos_copies", eos_copies, 1, MAX_EOS_COPIES)
        eos_grace_s = P.check_float(name, "eos_grace_s", eos_grace_s, 0.0, P.MAX_GRACE_S, what="s")
        gr.hier_block2.__init__(self, "packet_phy", gr.io_signature(0, 0, 0), gr.io_signature(0, 0, 0))
        energy = float(np.sum(np.abs(taps) ** 2))
        self.taps = (taps / np.sqrt(energy)).tolist()
        self.snr_db = snr_db
        self.tx = packet_phy_tx(sps=sps, bt=bt, eos_copies=eos_copies, eos_grace_s=eos_grace_s)
        self.channel = channels.channel_model(noise_voltage=noise_voltage(snr_db),
                                              frequency_offset=float(freq_offset), epsilon=1.0,
                                              taps=self.taps, noise_seed=int(seed), block_tags=False)
        self.rx = packet_phy_rx(sps=sps, threshold=threshold, eos_grace_s=eos_grace_s)
        self.connect(self.tx, self.channel, self.rx)
        self.message_port_register_hier_in(PDUS_PORT)
        self.msg_connect(self, PDUS_PORT, self.tx, PDUS_PORT)
        self.message_port_register_hier_out(PDUS_PORT)
        self.msg_connect(self.rx, PDUS_PORT, self, PDUS_PORT)
        self.msg_connect(self.tx.framer, EOS_SIM_PORT, self.rx.deframer, EOS_SIM_PORT)
        self.rx.deframer.upstream_edges += 1

    def set_snr_db(self, snr_db):
        """SNR per sample in dB, at run time."""
        snr_db = check_snr("packet_phy", snr_db)
        self.snr_db = snr_db
        self.channel.set_noise_voltage(noise_voltage(snr_db))

    def set_freq_offset(self, freq_offset):
        """Frequency offset in cycles per sample, in (-0.5, 0.5), at run time."""
        self.channel.set_frequency_offset(check_freq_offset("packet_phy", freq_offset))

    def overhead(self):
        return self.tx.overhead()

    def get_stats(self):
        """{'tx': framer counters, 'rx': deframer counters, 'loss': data packets lost / sent}."""
        t, r = self.tx.get_stats(), self.rx.get_stats()
        loss = 1.0 - r["packets"] / t["packets"] if t["packets"] else 0.0
        return {"tx": t, "rx": r, "snr_db": self.snr_db, "loss": max(0.0, loss)}
