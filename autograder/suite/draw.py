"""Drawing test inputs reproducibly: always from an explicit generator, never the global RNG."""
from __future__ import annotations

import torch


def generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (e.g. one of ``self.seeds(n)``)."""
    return torch.Generator().manual_seed(int(seed))


def randint(g: torch.Generator, lo: int, hi: int) -> int:
    """An int drawn uniformly in [lo, hi], both included."""
    return int(torch.randint(lo, hi + 1, (1,), generator=g))


def shape_text(shape) -> str:
    """``(2, 5, 16)`` for messages."""
    return "(" + ", ".join(str(int(d)) for d in shape) + ")"
