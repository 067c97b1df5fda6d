"""Standard exports of a lineage: W3C PROV-JSON and OpenLineage run events.

:func:`export_lineage` selects what to export — a revision and its ancestors (the runs that
made it and everything they used, recursively), or the whole store — reads who recorded each
run from the event log, and hands the records to a format module
(:mod:`lineage.audit.prov`, :mod:`lineage.audit.openlineage`). Identifiers derive from
digests, so two exports of the same history are byte-identical. :func:`validate_export`
checks a document against the format's schema (the OpenLineage 2-0-2 JSON Schema vendored in
``lineage/audit/schemas/``; the PROV-JSON schema the ``prov`` package ships).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from lineage.core.hashing import Digest
from lineage.core.records import Artifact, Run
from lineage.errors import InvalidQuery, UnsupportedValue
from lineage.refs.registry import VersionLabels
from lineage.storage import schema
from lineage.storage.base import ReadTxn
from lineage.storage.events import read_events
from lineage.views.query import ancestors, resolve_digest

__all__ = ["FORMATS", "Lineage", "export_lineage", "select", "validate_export"]

FORMATS: Final = ("prov-json", "openlineage")


@dataclass(frozen=True, slots=True)
class Lineage:
    """What an export holds: records (artifacts labelled with their versions) in digest
    order, and who recorded each record (from the event log; ``"unknown"`` before it)."""

    artifacts: tuple[Artifact, ...]
    runs: tuple[Run, ...]
    recorded_by: dict[Digest, str]

    def user(self, digest: Digest) -> str:
        """Who recorded the record ``digest``."""
        return self.recorded_by.get(digest, "unknown")


def select(txn: ReadTxn, revision: Any | None) -> Lineage:
    """The lineage of ``revision`` (itself and its ancestors), or every record when ``None``.

    Raises:
        RevisionNotFound, AmbiguousRevision, InvalidRevision: for ``revision``.
    """
    labels = VersionLabels(txn)
    if revision is None:
        records = [schema.read_record(txn, d) for d in schema.record_digests(txn)]
    else:
        root = schema.read_record(txn, resolve_digest(txn, revision))
        records = [root, *ancestors(txn, root)]
    labelled = [labels.label(r) for r in records]
    artifacts = sorted((r for r in labelled if isinstance(r, Artifact)), key=lambda a: a.digest)
    runs = sorted((r for r in labelled if isinstance(r, Run)), key=lambda r: (r.started,
                                                                              r.digest))
    wanted = {r.raw_digest for r in labelled}
    users = {}
    for event in read_events(txn):
        digest = event.details.get("digest")
        if event.action == "record" and isinstance(digest, bytes) and digest in wanted:
            users[Digest(digest)] = event.user
    return Lineage(tuple(artifacts), tuple(runs), users)


def export_lineage(txn: ReadTxn, revision: Any | None, *, fmt: str,
                   namespace: str = "lineage") -> str:
    """The lineage of ``revision`` (or of the whole store) as ``fmt`` text.

    Raises:
        InvalidQuery: an unknown format.
    """
    if fmt not in FORMATS:
        raise InvalidQuery(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    lineage = select(txn, revision)
    if fmt == "prov-json":
        from lineage.audit.prov import prov_document

        return json.dumps(prov_document(lineage), indent=2, sort_keys=True) + "\n"
    from lineage.audit.openlineage import run_events

    return "".join(json.dumps(event, sort_keys=True) + "\n"
                   for event in run_events(lineage, namespace=namespace))


def validate_export(text: str, *, fmt: str) -> list[str]:
    """Every schema violation in an export (empty: valid), each naming where it is.

    Raises:
        InvalidQuery: an unknown format.
        UnsupportedValue: ``jsonschema`` (or, for PROV-JSON, ``prov``) is not installed.
    """
    if fmt not in FORMATS:
        raise InvalidQuery(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    try:
        import jsonschema  # noqa: F401 - probe
    except ImportError:
        raise UnsupportedValue("validating needs jsonschema: pip install 'lineage[exports]'"
                               ) from None
    if fmt == "prov-json":
        return _validate_prov(json.loads(text))
    from lineage.audit.openlineage import validate_events

    return validate_events([json.loads(line) for line in text.splitlines() if line.strip()])


def _validate_prov(document: Any) -> list[str]:
    import jsonschema

    spec = importlib.util.find_spec("prov")
    if spec is None or spec.origin is None:
        raise UnsupportedValue("validating PROV-JSON needs the prov package (it ships the "
                               "schema): pip install 'lineage[exports]'")
    path = Path(spec.origin).parent / "tests" / "schemas" / "prov-json.schema.json"
    validator = jsonschema.Draft4Validator(json.loads(path.read_text()))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(document)'}: {e.message}"
            for e in sorted(validator.iter_errors(document), key=str)]


def vendored_schema(name: str) -> dict[str, Any]:
    """A JSON Schema vendored in ``lineage/audit/schemas/``."""
    text = resources.files("lineage.audit").joinpath("schemas", name).read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded
