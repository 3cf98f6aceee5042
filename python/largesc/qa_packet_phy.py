"""QA for packet_phy: the GMSK PHY loopback (packet_phy_tx -> channel model -> packet_phy_rx)."""

from gnuradio import gr_unittest

from gnuradio.largesc.app.phy_loss import measure_loss
from gnuradio.largesc.packet_phy import packet_phy


class qa_packet_phy(gr_unittest.TestCase):

    def test_phy_high_snr(self):
        sent, ok, eos_in_band, _ = measure_loss(25.0, packets=40, seed=3)
        self.assertEqual((sent, ok, eos_in_band), (40, 40, True))

    def test_set_snr(self):
        phy = packet_phy(snr_db=10)
        phy.set_snr_db(30)
        self.assertAlmostEqual(phy.channel.noise_voltage(), packet_phy(snr_db=30).channel.noise_voltage())
        self.assertEqual(phy.get_stats()["snr_db"], 30.0)


if __name__ == "__main__":
    gr_unittest.run(qa_packet_phy)
