"""AuditEvent read and search, served from the audit trail to auditors only; never written through the API."""

from __future__ import annotations

from typing import Any

from ..fhir.dates import DateFormatError, parse_range
from ..fhir.outcome import FhirError, Issue, bad_request, not_found
from ..fhir.text import plain_int
from ..security.audit import audit_event
from ..security.policy import forbidden
from .model import FhirResponse
from .router import Interaction

SEARCH_PARAMS = ("patient", "agent", "date", "action", "outcome", "_count", "_before", "_format", "_pretty")
DEFAULT_COUNT = 50
MAX_COUNT = 1000


def resolve(handler_name: str, method: str) -> Any:
    """The audit handler standing in for a matched route on AuditEvent, or a refusal."""
    if handler_name == "read":
        return audit_read
    if handler_name in ("search_type",):
        return audit_search
    if method in ("GET", "HEAD"):
        raise FhirError(405, [Issue("not-supported", "AuditEvents are read by id or searched; they have no "
                                                     "history or versions")], headers={"Allow": "GET"})
    raise FhirError(405, [Issue("not-supported", "AuditEvents are written by the server only; they cannot be "
                                                 "created, changed or deleted through the API")],
                    headers={"Allow": "GET"})


def check_auditor(ix: Interaction, letter: str) -> None:
    """Only auditors go on; for them every record still in a spool goes into the trail first, so an answered
    request is never missing from what they read."""
    repo = ix.repo
    if not repo.policy.audit_reader or not repo.caller.allows(letter, "AuditEvent"):
        raise forbidden("Only auditors read the audit trail")
    ix.services.audit.ship_outstanding()


def audit_read(ix: Interaction) -> FhirResponse:
    check_auditor(ix, "r")
    trail = ix.services.audit
    pk = plain_int(ix.id)
    if pk is None:
        raise not_found(f"AuditEvent/{ix.id} is not known")
    row = trail.get(ix.repo.connection, pk)
    if row is None:
        raise not_found(f"AuditEvent/{ix.id} is not known")
    patients = trail.patients_of(ix.repo.connection, [row.pk]).get(row.pk, [])
    return FhirResponse(200, audit_event(row, patients, ix.services.project_base))


def audit_search(ix: Interaction) -> FhirResponse:
    check_auditor(ix, "s")
    request = ix.request
    filters: dict[str, Any] = {}
    for name, value in request.params:
        if name not in SEARCH_PARAMS:
            raise bad_request(f"AuditEvent search supports {', '.join(SEARCH_PARAMS[:5])}, not '{name}'", name,
                              code="not-supported")
        if name == "patient":
            filters["patient"] = value.removeprefix("Patient/")
        elif name == "agent":
            filters["client"] = value.rpartition("|")[2]
        elif name == "date":
            date_filter(filters, value)
        elif name == "action":
            filters["action"] = value
        elif name == "outcome":
            filters["outcome"] = value
        elif name == "_before":
            before = plain_int(value)
            if before is None:
                raise bad_request("_before must be an AuditEvent id", "_before")
            filters["before"] = before
    count = request.param("_count")
    asked = None if count is None else plain_int(count)
    size = DEFAULT_COUNT if asked is None else max(1, min(asked, MAX_COUNT))
    trail = ix.services.audit
    rows = trail.find(ix.repo.connection, count=size, **filters)
    page = rows[:size]
    patients = trail.patients_of(ix.repo.connection, [row.pk for row in page]) if page else {}
    base = request.base_url
    entries = [{"fullUrl": f"{base}/AuditEvent/{row.pk}",
                "resource": audit_event(row, patients.get(row.pk, []), ix.services.project_base),
                "search": {"mode": "match"}} for row in page]
    kept = [(k, v) for k, v in request.params if k not in ("_before", "_count", "_format", "_pretty")]
    query = "&".join(f"{k}={v}" for k, v in [*kept, ("_count", str(size))])
    links = [{"relation": "self", "url": f"{base}/AuditEvent?{query}"}]
    if len(rows) > size:
        links.append({"relation": "next", "url": f"{base}/AuditEvent?{query}&_before={page[-1].pk}"})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}
    if len(rows) <= size and "before" not in filters:
        bundle["total"] = len(page)
    return FhirResponse(200, bundle)


def date_filter(filters: dict[str, Any], value: str) -> None:
    prefix, text = (value[:2], value[2:]) if value[:2] in ("ge", "gt", "le", "lt", "eq") else ("eq", value)
    try:
        low, high = parse_range(text)
    except (DateFormatError, ValueError) as exc:
        raise bad_request(f"date={value}: not a FHIR date", "date", code="value") from exc
    if prefix in ("ge", "eq"):
        filters["since"] = max(filters.get("since", low), low)
    if prefix == "gt":
        filters["since"] = max(filters.get("since", high + 1), high + 1)
    if prefix in ("le", "eq"):
        filters["until"] = min(filters.get("until", high), high)
    if prefix == "lt":
        filters["until"] = min(filters.get("until", low - 1), low - 1)
