"""A deterministic tuning/test split of an evaluation set, until the shared one exists under conf/dataset.

A file is in the tuning part when the first byte of the SHA-1 of its file name is below 86 (about a third of the
files): stable across machines and runs, independent of the manifest's order, and blind to content. Choices (a
margin, which layers to drop) read only the tuning part; the test part is only scored.
"""

from __future__ import annotations

import hashlib
from typing import Literal

Part = Literal["tuning", "test"]
TUNING_BELOW = 86  # of 256: about one file in three


def part_of(file_name: str) -> Part:
    digest = hashlib.sha1(file_name.encode("utf-8")).digest()
    return "tuning" if digest[0] < TUNING_BELOW else "test"
