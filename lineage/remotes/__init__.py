"""Sharing a store: remotes through fsspec (push, pull, remote gc) and steps on Dask.

Modules, one concept each:

- :mod:`~lineage.remotes.config`: which remotes a store knows (name -> URL, no secrets);
- :mod:`~lineage.remotes.connection`: fsspec calls, bounded retries, clear errors;
- :mod:`~lineage.remotes.layout`: what a remote holds, and an in-memory view of it;
- :mod:`~lineage.remotes.packing`: content in packs, uploaded and downloaded by ranges;
- :mod:`~lineage.remotes.refs`: versions by exclusive create, stage/tag moves merged;
- :mod:`~lineage.remotes.eventlog`: each store's event log travels, chains checked;
- :mod:`~lineage.remotes.transfer`: push and pull; :mod:`~lineage.remotes.gc`: remote gc;
- :mod:`~lineage.remotes.operations`: what the ``Store`` methods delegate to;
- :mod:`~lineage.remotes.executors`: reaching a store from Dask workers on other machines.

May import everything below :mod:`lineage.store`; nothing below imports it.
"""
