"""Review and audit: stage policies and the promotion gate, the audit report, and standard
exports (PROV-JSON, OpenLineage) and the prediction trace.

May import :mod:`lineage.views`, :mod:`lineage.diff`, :mod:`lineage.refs`,
:mod:`lineage.storage`, :mod:`lineage.core` and :mod:`lineage.errors`. Functions take a read
(or write) transaction and the backend; the ``Store`` facade delegates to them.
"""
