"""Freeing finished flowgraphs (GNU Radio 3.10 keeps connected hier blocks alive)."""


def release_hier_blocks(*blocks) -> None:
    """Let a finished flowgraph's hier blocks (and with them its buffers) be freed.

    GNU Radio 3.10 never frees a hier block whose own message ports are connected inside it
    (message_port_register_hier_in/out + msg_connect(self, ...): a shared_ptr cycle, GNU Radio
    issue #7706), nor the flowgraph around it, whose stream buffers are SysV shared memory
    segments (4096 per machine by default). A process that runs many flowgraphs one after the
    other (tests, fuzzing, a loop over files) then fails with "shmget: No space left on
    device". Call this once the flowgraph has finished: it disconnects every hier block given
    and every hier block they hold (largesc_tx, largesc_rx, packet_phy), which breaks the cycle
    and cuts the shared memory a loopback run leaves behind from 48 to 16 maps (erasure
    channel; 136 to 36 with the PHY; the rest is held elsewhere in GNU Radio). The blocks cannot
    be run again; their counters stay readable. loopback.run() calls it.
    """
    from gnuradio import gr
    seen = set()

    def walk(block):
        if id(block) in seen:
            return
        seen.add(id(block))
        for value in list(vars(block).values()):
            if isinstance(value, gr.hier_block2) and not isinstance(value, gr.top_block):
                walk(value)
        block.disconnect_all()

    for b in blocks:
        if isinstance(b, gr.hier_block2) and not isinstance(b, gr.top_block):
            walk(b)
