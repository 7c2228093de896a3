"""FhirApi: the FHIR REST interactions as a plain object (Flask only adapts HTTP to it)."""

from __future__ import annotations

import logging
import time
from typing import Any

from ..fhir.outcome import FhirError, Issue, not_found
from ..security.context import Caller
from ..security.policy import authorize_operation
from ..store.db import OutcomeUnknown, connection_lost
from ..store.services import StoreServices
from . import audit_events, auditing, handlers
from .bundles import BundleProcessor
from .capabilities import capability_statement
from .faults import database_fault, described
from .model import FhirRequest, FhirResponse
from .render import Subsetter, dumps
from .router import Interaction, Operation, Router, route

log = logging.getLogger(__name__)
RETRIES = 3
RECONNECT_PAUSE = 0.1  # seconds before the first retry on a new connection after one was lost


def routes() -> list:
    """The whole REST surface, in one table."""
    return [
        route("GET", "metadata", metadata),
        route("GET", "", handlers.search_system),
        route("POST", "", bundle),
        route("POST", "_search", handlers.search_system),
        route("GET", "_history", handlers.history_system),
        route("GET", ":type", handlers.search_type),
        route("POST", ":type/_search", handlers.search_type),
        route("POST", ":type", handlers.create),
        route("PUT", ":type", handlers.conditional_update),
        route("PATCH", ":type", handlers.conditional_patch),
        route("DELETE", ":type", handlers.conditional_delete),
        route("GET", ":type/_history", handlers.history_type),
        route("GET", ":type/:id", handlers.read),
        route("PUT", ":type/:id", handlers.update),
        route("PATCH", ":type/:id", handlers.patch),
        route("DELETE", ":type/:id", handlers.delete),
        route("GET", ":type/:id/_history", handlers.history_instance),
        route("GET", ":type/:id/_history/:vid", handlers.vread),
        route("GET", ":type/:id/:compartment", handlers.search_compartment),
    ]


def metadata(ix: Interaction) -> FhirResponse:
    return FhirResponse(200, ix.app.capabilities(ix.request.base_url))


def bundle(ix: Interaction) -> FhirResponse:
    return ix.app.bundles.process(ix.request.body, ix.request, ix.repo)


class FhirApi:
    """Routes FhirRequests to handlers inside one database transaction per request."""

    NO_DATABASE = frozenset({"metadata"})

    def __init__(self, services: StoreServices, base_url: str = "") -> None:
        self.services = services
        self.base_url = base_url.rstrip("/")
        self.router = Router(routes(), services.types.supported, services.types.require)
        self.subsetter = Subsetter(services.elements)
        self.bundles = BundleProcessor(self)
        self.capability_cache: dict[str, str] = {}
        self.base_urls: dict[tuple[str | None, ...], str] = {}  # (scheme, Host, mount point) -> FHIR base URL

    def add_operation(self, operation: Operation) -> None:
        self.router.add_operation(operation)
        self.capability_cache.clear()

    def capabilities(self, base_url: str) -> str:
        if base_url not in self.capability_cache:
            self.capability_cache[base_url] = dumps(capability_statement(self, base_url))
        return self.capability_cache[base_url]

    @staticmethod
    def dumps(value: Any) -> str:
        return dumps(value)

    def handle(self, request: FhirRequest, caller: Caller) -> FhirResponse:
        """Run one request and audit it: the record is written with the answer (in a write's own
        transaction, at once for a read), or on its own when the request is refused or fails.
        Write transactions are retried on serialisation failures and deadlocks."""
        try:
            handler, variables, writing = self.router.match(request.method, request.path)
        except FhirError as exc:
            auditing.on_refusal(self.services, auditing.begin(caller, request, "unknown", {}), exc)
            raise
        if handler.__name__ in self.NO_DATABASE:
            return handler(Interaction(request, None, self.services, self, variables))  # type: ignore[arg-type]
        record = auditing.begin(caller, request, auditing.interaction_of(handler, request), variables)
        try:
            if variables.get("type") == "AuditEvent" or variables.get("compartment") == "AuditEvent":
                handler = audit_events.resolve(handler.__name__, request.method)
            if caller.break_glass is not None and not self.services.policies.policy(caller.kind).break_glass:
                raise FhirError(403, [Issue("forbidden", f"Clients of kind {caller.kind} may not break the glass")])
            if caller.break_glass is not None and not caller.break_glass.strip():
                raise FhirError(400, [Issue("required", "Breaking the glass needs a reason in X-Break-Glass-Reason",
                                            ("X-Break-Glass-Reason",))])
            return self.attempt(handler, variables, writing, request, caller, record)
        except Exception as exc:
            try:
                auditing.on_refusal(self.services, record, exc)
            except Exception as failure:
                if not connection_lost(failure):
                    raise
                log.warning("no audit record for %s: the database is not reachable",
                            described(request.method, request.path, request.params))
            raise

    def attempt(self, handler: Any, variables: dict[str, str], writing: bool, request: FhirRequest,
                caller: Caller, record: Any) -> FhirResponse:
        """Run the request in a unit of work; again on a serialisation failure or deadlock, and on a new
        connection when the one it ran on was lost before its commit (so the database rolled it back). A
        database fault that remains is answered 503 (see `faults`)."""
        operation = isinstance(handler, Operation)
        for attempt in range(RETRIES):
            try:
                with self.services.unit(caller, writing=writing, operation=operation) as repo:
                    response = self.run(handler, variables, request, repo)
                    auditing.on_answer(repo, record, response)
                    return response
            except FhirError:
                raise
            except Exception as exc:
                lost = connection_lost(exc) and not isinstance(exc, OutcomeUnknown)
                if attempt + 1 < RETRIES and (retryable(exc) or lost):
                    log.warning("retrying %s after %s", "on a new connection" if lost else "the unit",
                                str(getattr(exc, "orig", exc)).splitlines()[0][:300] if str(exc) else type(exc))
                    if lost:
                        time.sleep(RECONNECT_PAUSE * attempt)
                    continue
                limit = self.services.database.statement_limit(writing=writing, operation=operation)
                fault = database_fault(exc, request.method, request.path, request.params, limit)
                if fault is None:
                    raise
                log.warning("%s: answered %s: %s", described(request.method, request.path, request.params),
                            fault.status, type(exc).__name__)
                raise fault from exc
        raise AssertionError("unreachable")

    def dispatch(self, request: FhirRequest, repo: Any, extra: dict[str, str] | None = None) -> FhirResponse:
        """Run a request inside an existing unit (a Bundle entry)."""
        handler, variables, _writing = self.router.match(request.method, request.path)
        if handler is bundle:
            raise FhirError(400, [Issue("not-supported", "Bundles cannot be nested")])
        if variables.get("type") == "AuditEvent" or variables.get("compartment") == "AuditEvent":
            handler = audit_events.resolve(handler.__name__, request.method)
        variables.update(extra or {})
        return self.run(handler, variables, request, repo)

    def run(self, handler: Any, variables: dict[str, str], request: FhirRequest, repo: Any) -> FhirResponse:
        if isinstance(handler, Operation):
            self.check_operation(handler, variables, repo)
        response = handler(Interaction(request, repo, self.services, self, variables))
        if response.subsettable and isinstance(response.body, str):
            summary = request.param("_summary")
            elements = request.param("_elements")
            if summary or elements:
                wanted = [e.strip() for e in (elements or "").split(",") if e.strip()]
                response.body = self.subsetter.apply(response.body, summary, wanted)
        return response


    @staticmethod
    def check_operation(operation: Operation, variables: dict[str, str], repo: Any) -> None:
        """The caller's kind must run the operation, its scopes cover what it reads and writes, and an
        instance-level operation's resource must be in reach (or it does not exist for the caller)."""
        reads = operation.reads or tuple(t for t in (variables.get("type"),) if t)
        authorize_operation(repo.caller, repo.policy, operation.name, reads, operation.writes)
        if "id" not in variables:
            return
        if operation.name == "case-status" and repo.policy.case_status_any_patient:
            return
        if not repo.sees(variables["type"], variables["id"]):
            repo.read(variables["type"], variables["id"])  # answers as a read would: 404, or 403 'suppressed'
            raise not_found(f"{variables['type']}/{variables['id']} is not known")


def retryable(exc: BaseException) -> bool:
    """A serialisation failure or deadlock (PostgreSQL), or a busy database (SQLite): worth running again."""
    cause = getattr(exc, "orig", None) or exc
    code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return code in ("40001", "40P01") or "database is locked" in str(cause)
