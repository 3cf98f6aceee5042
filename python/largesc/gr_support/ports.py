"""The module's message port names, defined once (docs/architecture.md, "Message port names").

Each is here as the string that hier blocks' msg_connect and the GRC YAML use (``*_PORT``) and as
the PMT symbol that blocks register and publish on. The names follow what the port carries.
"""
import pmt

PDUS_PORT = "pdus"              # PDUs in or out (gr-pdu style)
FEEDBACK_PORT = "feedback"      # loss reports (dict: loss_rate, window_loss, ...)
CTRL_PORT = "ctrl"              # run-time control (dict: parameter -> value)
STATS_PORT = "stats"            # counters (dict), at an interval and at stop
TEXT_PORT = "text"              # text side channel: str / PDU in (TX), PDU out (RX) (docs/text-channel.md)
PTT_PORT = "ptt"                # push to talk: a bool; False ends the over (end-of-over packets)
SYSTEM_PORT = "system"          # GNU Radio's own: `done` when an upstream block finished
# the packet PHY's link framing (packet_phy.py)
EOS_SIM_PORT = "eos_sim"        # the simulated loopback's out-of-band eos mark
PREAMBLE_PORT = "preamble"      # one PDU per burst for the PHY's tagged-stream mux
POSTAMBLE_PORT = "postamble"
FAIL_PORT = "fail"              # packets whose CRC failed (counted)
LINK_DONE_PORT = "done"         # carries nothing: GNU Radio tells its subscribers when the block ends

PDUS = pmt.intern(PDUS_PORT)
FEEDBACK = pmt.intern(FEEDBACK_PORT)
CTRL = pmt.intern(CTRL_PORT)
STATS = pmt.intern(STATS_PORT)
SYSTEM = pmt.intern(SYSTEM_PORT)
TEXT = pmt.intern(TEXT_PORT)
PTT = pmt.intern(PTT_PORT)
EOS_SIM = pmt.intern(EOS_SIM_PORT)
PREAMBLE = pmt.intern(PREAMBLE_PORT)
POSTAMBLE = pmt.intern(POSTAMBLE_PORT)
FAIL = pmt.intern(FAIL_PORT)
LINK_DONE = pmt.intern(LINK_DONE_PORT)
DONE = pmt.intern("done")       # the message GNU Radio posts on `system` (not a port)
