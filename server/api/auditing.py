"""Every FHIR request audited: its record written with the answer, refusals on their own, break-glass follow-up."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..fhir.outcome import FhirError, Issue
from ..security.audit import AuditRecord
from ..security.context import Caller
from .model import FhirRequest, FhirResponse

if TYPE_CHECKING:
    from ..store.repository import Repository
    from ..store.services import StoreServices

log = logging.getLogger(__name__)
PRIVACY_OFFICER = "privacy-officer"
INTERACTIONS = {
    "read": "read", "vread": "vread", "search_type": "search-type", "search_system": "search-system",
    "search_compartment": "search-type", "create": "create", "update": "update", "patch": "patch",
    "delete": "delete", "conditional_update": "update", "conditional_patch": "patch",
    "conditional_delete": "delete", "history_instance": "history-instance", "history_type": "history-type",
    "history_system": "history-system", "audit_read": "read", "audit_search": "search-type",
}


def interaction_of(handler: Any, request: FhirRequest) -> str:
    """The FHIR restful-interaction code of a matched handler."""
    name = handler.__name__
    if name == "bundle":
        body = request.body if isinstance(request.body, dict) else {}
        return "transaction" if body.get("type") == "transaction" else "batch"
    if getattr(handler, "levels", None) is not None:
        return "operation"
    return INTERACTIONS.get(name, name)


def begin(caller: Caller, request: FhirRequest, interaction: str, variables: dict[str, str]) -> AuditRecord:
    return AuditRecord.of_request(caller, request.method, request.path, request.params, interaction,
                                  variables.get("type"), variables.get("id"), request.query_text)


def on_answer(repo: Repository, record: AuditRecord, response: FhirResponse) -> None:
    """Write the record as the unit ends: in the write's own transaction, or kept at once for a read."""
    services = repo.services
    ended = record.ended(response.status)
    ended.patients.update(repo.patients)
    if repo.established:  # a write through which the organisation came to hold people: the officer sees it
        people = ", ".join(f"Patient/{p}" for p in sorted(repo.established))
        ended = replace(ended.ended(response.status, f"this write brought {people} into the client's reach"),
                        alert=True)

    def write() -> None:
        if record.written:  # a retried unit whose record was already kept (a read's is kept at once)
            return
        if repo.connection.get_execution_options().get("writing"):
            services.audit.write(repo.connection, ended, repo.touched)
        else:
            services.audit.keep(services.database, ended, repo.connection, repo.touched)
            record.written = True
        if ended.alert and repo.caller.break_glass is not None and repo.policy.break_glass:
            raise_privacy_task(repo, ended)

    repo.finishers.append(write)


def on_refusal(services: StoreServices, record: AuditRecord, exc: BaseException) -> None:
    """Record a request that was refused or failed (apart from the request's unit, which rolled back)."""
    if record.written:  # the answer's record is kept already; what failed after it is in the log
        return
    if isinstance(exc, FhirError):
        status = exc.status
        detail = "; ".join(issue.get("diagnostics", "") for issue in exc.outcome().get("issue", []))
    else:
        status, detail = 500, f"internal error: {type(exc).__name__}"
    services.audit.keep(services.database, record.ended(status, detail))


def raise_privacy_task(repo: Repository, record: AuditRecord) -> None:
    """A break-glass request raises a Task for the privacy officer to review, in the same transaction."""
    from ..store.repository import Repository as Repo

    services = repo.services
    patients = sorted(record.patients | services.audit.patients_of_resources(repo.connection, repo.touched))
    task: dict[str, Any] = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": "urgent",
        "code": {"text": "Review a break-glass access"},
        "description": (f"{record.client} ({record.kind}, {record.organization}) broke the glass: "
                        f"{record.query}. Reason given: {record.detail}")[:4000],
        "authoredOn": record_time(record),
        "owner": {"display": "Privacy officer"},
        "input": [{"type": {"text": "request"}, "valueString": record.request_id or record.query or ""}],
    }
    for patient in patients[:50]:  # named as inputs, not as its subject: no holder of the person sees it
        task["input"].append({"type": {"text": "patient"}, "valueReference": {"reference": f"Patient/{patient}"}})
    officer = Caller.system(PRIVACY_OFFICER, record.request_id)
    if repo.connection.get_execution_options().get("writing"):  # inside the request's own transaction
        raised = Repo(repo.connection, officer, services)
        raised.create(task, resource_type="Task")
        raised.flush()
        return
    with services.unit(officer, writing=True) as raised:  # a read: the Task gets a transaction of its own
        raised.create(task, resource_type="Task")


def record_time(record: AuditRecord) -> str:
    from ..fhir.dates import format_instant

    return format_instant(record.recorded)


def auth_event_recorder(services: StoreServices) -> Any:
    """An `on_auth_event` listener for FhirHttp: every token request, revocation and refused bearer token is
    audited (refusals as security alerts). The assertion and the token themselves are never kept."""
    from ..security.events import AuthEvent

    def record(event: AuthEvent, environ: dict[str, Any]) -> None:
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        detail = ": ".join(part for part in (event.error, event.description) if part) or event.outcome
        entry = AuditRecord(
            client=event.client_id or "unknown", interaction=event.action, action="E",
            organization=event.organization, kind=event.kind, request_id=environ.get("HTTP_X_REQUEST_ID"),
            query=f"{method} {path}"[:4000], alert=event.refused,
            detail=(f"{detail}; scope {event.scope}" if event.scope and not event.refused else detail)[:4000],
            status=event.status)
        services.audit.keep(services.database, entry)

    return record


def refusal_recorder(services: StoreServices) -> Any:
    """An `on_refusal` listener for FhirHttp: a request refused before the API handled it (a method that is no
    FHIR interaction, an Accept or Content-Type it cannot serve, a body that is not JSON) is audited too."""
    from werkzeug.exceptions import HTTPException

    def record(caller: Caller, method: str, path: str, exc: BaseException) -> None:
        entry = AuditRecord.of_request(caller, method, path, [], "unknown", None, None)
        if isinstance(exc, HTTPException):
            exc = FhirError(exc.code or 400, [Issue("processing", exc.description or exc.name)])
        on_refusal(services, entry, exc)

    return record
