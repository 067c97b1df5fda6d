"""Identity: digests (XXH3-128, chunking), the canonical encoding, and the records.

Everything here is pure: no storage, no I/O beyond reading a file to hash it. It may import
only :mod:`lineage.errors`.
"""
