"""The benchmark matrix study: run rows, record them, pick the winner, render reports/<device>/."""
