"""gr-largesc: LargeSC speech over lossy links, as a GNU Radio out-of-tree module."""
