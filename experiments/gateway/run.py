"""``asrforge run gateway <experiment> [options]``: one of the gateway measurements, each appending one record to
reports/gateway/gateway.jsonl and re-rendering reports/gateway/README.md:

- ``rss``: gateway and worker memory before, during and after a burst, with the idle timeout;
- ``kill``: a worker killed with SIGKILL under load, what the clients saw and how long recovery took;
- ``throughput``: 1, 2 and 4 CPU workers against the single process, same load;
- ``ray``: Ray Serve replicas serving the same requests (needs the ``ray`` extra).

``asrforge run gateway <experiment> --help`` lists each one's options.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

EXPERIMENTS = {
    "rss": "asrforge.experiments.gateway.rss",
    "kill": "asrforge.experiments.gateway.kill",
    "throughput": "asrforge.experiments.gateway.throughput",
    "ray": "asrforge.experiments.gateway.ray_replicas",
}


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] not in EXPERIMENTS:
        print(__doc__, file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return importlib.import_module(EXPERIMENTS[argv[0]]).main(list(argv[1:]))
