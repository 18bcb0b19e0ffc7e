"""Torch's intra-op thread count for loops of many small operations (world model, MPC on a few assets).

On a CPU, tiny tensors gain nothing from several threads and pay a fork/join per op.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def single_thread(enabled: bool = True) -> Iterator[None]:
    """Run the block with one torch thread (restored afterwards); `enabled=False` leaves it alone (e.g. on a GPU)."""
    n = torch.get_num_threads()
    if enabled:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
