"""The LMDB store and the memory store, side by side with a plain-dict model, under
hypothesis: the state machine lineage ships in :mod:`lineage.testing.stateful`."""

from __future__ import annotations

from lineage.testing.stateful import StoreStateMachine


class LmdbBesideMemory(StoreStateMachine):
    """Both built-in backends, compared with the model and with each other."""


TestStoreMatchesTheModel = LmdbBesideMemory.TestCase
TestStoreMatchesTheModel.settings = StoreStateMachine.SETTINGS
