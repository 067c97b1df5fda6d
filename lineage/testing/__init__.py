"""Reusable test suites and fault helpers, for lineage's tests and any backend's.

- :class:`StoreContract` (:mod:`~lineage.testing.contract`): the tests every storage backend
  must pass; subclass it and implement ``make_backend``.
- :mod:`~lineage.testing.faults`: ``snapshot``, ``collide``, ``flip_byte``,
  ``flip_chunk_byte``: damage planted in a real store.
- :mod:`~lineage.testing.stateful`: the hypothesis state machine of the store against a model.

These modules import pytest and hypothesis; they are meant for test suites only.
"""

from __future__ import annotations

from lineage.testing.contract import StoreContract
from lineage.testing.faults import collide, flip_byte, flip_chunk_byte, snapshot

__all__ = ["StoreContract", "collide", "flip_byte", "flip_chunk_byte", "snapshot"]
