"""The web view: the store's models, runs, lineage graphs, diffs and reports as pages — a
static site (``lineage site``) or served read-only from the live store (``lineage ui``).

May import every package below the command line (``audit``, ``views``, ``diff``, the
``Store`` facade); pages use the store's public methods only.
"""
