"""Report: the self-contained HTML report of a train or tune output."""
