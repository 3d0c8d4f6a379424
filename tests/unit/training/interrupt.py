"""Stopping a training run at a chosen epoch, as Ctrl-C would, for the resume tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def interrupted_at_epoch(monkeypatch: pytest.MonkeyPatch, sampler: type, epoch: int) -> Iterator[None]:
    """Within the block, ``sampler.set_epoch(epoch)`` raises KeyboardInterrupt (the epochs before it
    complete and are saved); the block must raise it, and afterwards the sampler is whole again."""
    original = sampler.set_epoch

    def interrupt(self, number):
        if number == epoch:
            raise KeyboardInterrupt
        original(self, number)

    monkeypatch.setattr(sampler, "set_epoch", interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        monkeypatch.setattr(sampler, "set_epoch", original)
