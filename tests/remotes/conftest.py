"""Fixtures of the remote tests: a real S3-compatible server and a remote of either kind
(see ``tests/remotes_support.py``)."""

from remotes_support import remote, s3_server, s3_server_with_auth

__all__ = ["remote", "s3_server", "s3_server_with_auth"]
