"""Batch and transaction Bundles: each entry dispatched through the same router as a single request."""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..fhir import jsontext
from ..fhir.dates import format_instant
from ..fhir.envelope import envelope
from ..fhir.outcome import FhirError, Issue, bad_request, information
from ..fhir.patch import JSON_PATCH_TYPES
from ..fhir.querystring import parse_query
from ..fhir.references import BUNDLE_URNS, element_path
from ..store.integrity import IntegrityRefusal
from ..store.search.criteria import Criteria
from .model import FhirRequest, FhirResponse
from .render import dumps

if TYPE_CHECKING:
    from ..store.repository import Repository
    from .app import FhirApi

METHOD_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content", 304: "304 Not Modified",
               400: "400 Bad Request", 403: "403 Forbidden", 404: "404 Not Found", 405: "405 Method Not Allowed",
               409: "409 Conflict", 410: "410 Gone", 412: "412 Precondition Failed", 415: "415 Unsupported Media Type",
               422: "422 Unprocessable Entity"}
MAX_ENTRIES = 10_000
CONTROL = re.compile(r"[\x00-\x1f]")


@dataclass
class Entry:
    """One Bundle entry: where it sits, its request, and what the server decided about its identity."""

    index: int
    method: str
    url: str
    full_url: str | None
    resource: Any
    request: dict[str, Any]
    assigned: str | None = None
    existing: FhirResponse | None = None
    matches: list[tuple[int, str]] | None = None
    criteria: Criteria | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"


class BundleProcessor:
    """Runs batch Bundles entry by entry and transaction Bundles all-or-nothing."""

    def __init__(self, api: FhirApi) -> None:
        self.api = api
        self.running = threading.local()  # the Bundle a request thread is running: its kind and deadline

    def process(self, bundle: Any, outer: FhirRequest, repo: Repository) -> FhirResponse:
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise bad_request("POST to the base URL takes a Bundle of type batch or transaction")
        kind = bundle.get("type")
        if kind not in ("batch", "transaction"):
            raise bad_request(f"Bundle type must be batch or transaction, not {kind!r}", "Bundle.type")
        raw_entries = bundle.get("entry", [])
        if not isinstance(raw_entries, list):
            raise bad_request("Bundle.entry must be a list", "Bundle.entry")
        if len(raw_entries) > MAX_ENTRIES:
            raise FhirError(413, [Issue("too-costly", f"A Bundle may hold at most {MAX_ENTRIES} entries")])
        entries = [self.entry(raw, index) for index, raw in enumerate(raw_entries)]
        self.api.services.validator.check_envelope(envelope(bundle))
        limit_ms = self.api.services.database.statement_limit(writing=True, operation=True)
        self.running.kind, self.running.limit_ms = kind, limit_ms
        self.running.deadline = time.monotonic() + limit_ms / 1000 if limit_ms else None
        try:
            if kind == "batch":
                responses = [self.run_batch_entry(entry, outer, repo) for entry in entries]
            else:
                responses = self.run_transaction(entries, outer, repo)
        finally:
            self.running.deadline = None
        body = {"resourceType": "Bundle", "type": f"{kind}-response"}
        texts = [self.response_entry(response, outer) for response in responses]
        text = dumps(body)[:-1] + ',"entry":[' + ",".join(texts) + "]}"
        return FhirResponse(200, text)

    def entry(self, raw: Any, index: int) -> Entry:
        where = f"Bundle.entry[{index}]"
        if not isinstance(raw, dict):
            raise bad_request("A Bundle entry must be a JSON object", where)
        request = raw.get("request")
        if not isinstance(request, dict):
            raise bad_request("Every batch or transaction entry needs a request", f"{where}.request")
        method = request.get("method")
        url = request.get("url")
        if not isinstance(method, str) or method not in METHOD_ORDER or not isinstance(url, str) or not url:
            raise bad_request("An entry request needs a method (GET HEAD POST PUT PATCH DELETE) and a url",
                              f"{where}.request")
        if raw.get("resource") is not None and not isinstance(raw["resource"], dict):
            raise bad_request("An entry's resource must be a JSON object", f"{where}.resource")
        for key in ("url", "ifNoneExist", "ifMatch", "ifNoneMatch", "ifModifiedSince"):
            value = request.get(key)
            if isinstance(value, str) and CONTROL.search(value):
                raise bad_request(f"Control characters are not allowed in request.{key}", f"{where}.request.{key}")
        full_url = raw.get("fullUrl") if isinstance(raw.get("fullUrl"), str) else None
        return Entry(index, method, self.relative(url, f"{where}.request.url"), full_url, raw.get("resource"),
                     request)

    def relative(self, url: str, where: str) -> str:
        """A URL of this server as a path below its base (400 naming `where` when it is not a URL)."""
        base = self.api.base_url
        if url.startswith(base + "/"):
            return url[len(base) + 1:]
        if "://" in url:
            try:
                parts = urlsplit(url)
            except ValueError as exc:
                raise bad_request(f"{url!r} is not a valid URL: {exc}", where) from exc
            return parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
        return url.lstrip("/")

    # -------------------------------------------------------------------- batch

    def run_batch_entry(self, entry: Entry, outer: FhirRequest, repo: Repository) -> FhirResponse:
        try:
            with repo.connection.begin_nested():
                try:
                    self.resolve_references(entry, repo, {}, {})
                    response = self.dispatch(entry, outer, repo)
                    repo.check_written()
                    repo.check_references()
                except BaseException:
                    repo.discard_pending()
                    raise
            return response
        except FhirError as exc:
            located = self.locate(exc, entry)
            return FhirResponse(located.status, located.outcome())

    # -------------------------------------------------------------- transaction

    def run_transaction(self, entries: list[Entry], outer: FhirRequest, repo: Repository) -> list[FhirResponse]:
        """All or nothing, in the specification's order: DELETE, POST, PUT/PATCH, then GET/HEAD."""
        ordered = sorted(entries, key=lambda e: (METHOD_ORDER[e.method], e.index))
        identities: dict[str, str] = {}
        responses: dict[int, FhirResponse] = {}
        cache: dict[str, str] = {}
        self.check_duplicates(entries)
        for entry in ordered:
            if entry.method == "DELETE":
                responses[entry.index] = self.located(entry, lambda e=entry: self.dispatch(e, outer, repo))
        for entry in ordered:
            self.located(entry, lambda e=entry: self.condition_of(e, repo))
        self.resolve_conditions(ordered, repo)
        for entry in ordered:
            self.located(entry, lambda e=entry: self.assign_identity(e, repo, identities))
        repo.prefetch_current([tuple(e.url.split("/", 1)) for e in ordered  # type: ignore[misc]
                               if e.method == "PUT" and "?" not in e.url and e.url.count("/") == 1])
        for entry in ordered:
            self.located(entry, lambda e=entry: self.resolve_references(e, repo, identities, cache))
        for entry in ordered:
            if entry.method == "DELETE":
                continue
            if entry.existing is not None:
                responses[entry.index] = entry.existing
                continue
            responses[entry.index] = self.located(entry, lambda e=entry: self.dispatch(e, outer, repo))
        self.check_references(entries, responses, repo)
        return [responses[entry.index] for entry in entries]

    def check_references(self, entries: list[Entry], responses: dict[int, FhirResponse], repo: Repository) -> None:
        """Referential integrity of the whole transaction at once, a refusal located at the entry that
        wrote (or deleted) the resource it is about."""
        try:
            repo.check_references()
        except IntegrityRefusal as exc:
            found = next((entry for entry in entries if (stored := responses[entry.index].stored) is not None
                          and (stored.type, stored.id) == exc.source), None)
            raise self.locate(exc, found) from None

    def located(self, entry: Entry, step: Any) -> Any:
        try:
            return step()
        except FhirError as exc:
            raise self.locate(exc, entry) from None

    @staticmethod
    def condition_of(entry: Entry, repo: Repository) -> None:
        """The canonical criteria of a conditional create (`ifNoneExist`) or update (url query) entry."""
        path, _, query = entry.url.partition("?")
        if_none_exist = entry.request.get("ifNoneExist")
        if entry.method == "POST" and isinstance(if_none_exist, str) and if_none_exist.strip():
            entry.criteria = repo.criteria(path.strip("/"), if_none_exist, "ifNoneExist",
                                           f"{entry.where}.request.ifNoneExist")
        elif entry.method == "PUT" and "?" in entry.url:
            entry.criteria = repo.criteria(path.strip("/"), query, "Conditional update", f"{entry.where}.request.url")

    @staticmethod
    def resolve_conditions(entries: list[Entry], repo: Repository) -> None:
        """Lock every condition of the transaction up front and look identifier conditions up together."""
        conditions = sorted({entry.criteria for entry in entries if entry.criteria is not None}, key=str)
        if not conditions:
            return
        found = repo.resolve_conditions(conditions)
        for entry in entries:
            if entry.criteria is not None and entry.criteria in found:
                entry.matches = found[entry.criteria]

    @staticmethod
    def check_duplicates(entries: list[Entry]) -> None:
        seen: dict[str, int] = {}
        for entry in entries:
            if entry.full_url and entry.method in ("POST", "PUT"):
                if entry.full_url in seen:
                    raise bad_request(f"fullUrl {entry.full_url} appears in entries {seen[entry.full_url]} and "
                                      f"{entry.index}", f"{entry.where}.fullUrl")
                seen[entry.full_url] = entry.index

    def assign_identity(self, entry: Entry, repo: Repository, identities: dict[str, str]) -> None:
        """Decide which resource each POST/PUT entry is, before any reference is rewritten."""
        path = entry.url.partition("?")[0]
        condition = None if entry.criteria is None else str(entry.criteria)
        if entry.method == "POST":
            resource_type = path.strip("/")
            if entry.criteria is not None:
                match = self.existing_match(entry, repo, entry.criteria)
                if match is not None:
                    entry.existing = FhirResponse(200, match.body, {}, match)
                    self.remember(entry, identities, f"{resource_type}/{match.id}", condition)
                    return
            entry.assigned = str(uuid.uuid4())
            self.remember(entry, identities, f"{resource_type}/{entry.assigned}", condition)
        elif entry.method == "PUT":
            if entry.criteria is not None:
                matches = entry.matches if entry.matches is not None else repo.find(
                    path, entry.criteria, what="Conditional update")
                if len(matches) > 1:
                    raise FhirError(412, [Issue("multiple-matches", f"Conditional update matched {len(matches)} "
                                                                    f"resources: {entry.criteria}")])
                body_id = entry.resource.get("id") if isinstance(entry.resource, dict) else None
                if body_id is not None and not isinstance(body_id, str):
                    raise bad_request("Resource.id must be a string", f"{entry.where}.resource.id")
                found = matches[0][1] if matches else (body_id or str(uuid.uuid4()))
                if not matches and not body_id:
                    entry.extra["new_id"] = found  # nobody else can hold an id made up just now
                entry.url = f"{path}/{found}"
                if isinstance(entry.resource, dict):
                    entry.resource = {**entry.resource, "id": found}
                self.remember(entry, identities, entry.url, condition)
            else:
                self.remember(entry, identities, path)

    @staticmethod
    def existing_match(entry: Entry, repo: Repository, criteria: Criteria) -> Any:
        """The resource an ifNoneExist condition matches (None when nothing does; 412 for several)."""
        if entry.matches is None:
            return repo.conditional_match(criteria.resource_type, criteria, "ifNoneExist")
        if len(entry.matches) > 1:
            raise FhirError(412, [Issue("multiple-matches",
                                        f"ifNoneExist matched {len(entry.matches)} resources: {criteria}")])
        return repo.fetch_current(criteria.resource_type, entry.matches[0][1]) if entry.matches else None

    @staticmethod
    def remember(entry: Entry, identities: dict[str, str], reference: str, condition: str | None = None) -> None:
        """Record what an entry's fullUrl, and a conditional entry's criteria (`Patient?identifier=...`,
        so conditional references to it resolve inside the same transaction), now refer to."""
        if entry.full_url:
            identities[entry.full_url] = reference
        if condition:
            identities[condition] = reference

    def resolve_references(self, entry: Entry, repo: Repository, identities: dict[str, str],
                           cache: dict[str, str]) -> None:
        """In one walk of the entry's resource: fullUrls to their resolved references, conditional
        references (`Type?criteria`) to the one resource they match (else 412), and a `urn:uuid:` or
        `urn:oid:` reference that no entry of the Bundle carries as its fullUrl refused (400)."""
        if entry.resource is None:
            return
        dangling: str | None = None
        stack: list[Any] = [entry.resource]
        while stack:
            node = stack.pop()
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, item in items:
                if isinstance(item, str):
                    if item in identities:
                        node[key] = identities[item]
                    elif key != "reference" or item.startswith("#"):
                        continue
                    elif "?" in item:
                        node[key] = self.conditional_reference(item, repo, identities, cache, entry)
                    elif item.startswith(BUNDLE_URNS) and dangling is None:
                        dangling = item
                elif isinstance(item, (dict, list)):
                    stack.append(item)
        if dangling is not None and not is_bundle(entry.resource):
            where = element_path(entry.resource, f"{entry.where}.resource", lambda value: value == dangling)
            raise bad_request(f"{where} refers to {dangling}, which is the fullUrl of no entry in this Bundle",
                              where, code="not-found")

    def conditional_reference(self, reference: str, repo: Repository, identities: dict[str, str],
                              cache: dict[str, str], entry: Entry) -> str:
        """The one resource a conditional reference matches: an entry of this transaction with the same
        criteria, however spelled, or else exactly one stored resource (412 for none or several)."""
        if reference in cache:
            return cache[reference]
        resource_type, _, query = self.relative(reference, entry.where).partition("?")
        if resource_type not in self.api.services.types.supported:
            raise bad_request(f"Conditional reference {reference!r} names an unknown type", entry.where)
        criteria = repo.criteria(resource_type, query, f"Conditional reference {reference}", entry.where)
        if str(criteria) in identities:
            cache[reference] = identities[str(criteria)]
            return cache[reference]
        matches = repo.find(resource_type, criteria, what=f"Conditional reference {reference}")
        if len(matches) != 1:
            raise FhirError(412, [Issue(
                "multiple-matches" if matches else "not-found",
                f"Conditional reference {reference} matched {len(matches)} resources; it must match exactly one",
                expression=(entry.where,))])
        cache[reference] = resolved = f"{resource_type}/{matches[0][1]}"
        return resolved

    # ----------------------------------------------------------------- dispatch

    def check_deadline(self, entry: Entry) -> None:
        """A Bundle runs within the time an operation may take (each of its statements has its own limit, but
        ten thousand entries could hold a worker for hours): past it, a transaction stops whole and changes
        nothing, and a batch's remaining entries are answered without being run."""
        deadline = getattr(self.running, "deadline", None)
        if deadline is None or time.monotonic() <= deadline:
            return
        seconds = f"{self.running.limit_ms / 1000:g} s"
        if self.running.kind == "transaction":
            message = (f"The transaction ran past the {seconds} a Bundle may take, at {entry.where}; nothing was "
                       "changed: send it as smaller transactions")
        else:
            message = f"Not run: the batch ran past the {seconds} a Bundle may take; send it again in a smaller batch"
        raise FhirError(503, [Issue("too-costly", message, (entry.where,))])

    def dispatch(self, entry: Entry, outer: FhirRequest, repo: Repository) -> FhirResponse:
        self.check_deadline(entry)
        path, _, query = entry.url.partition("?")
        body = entry.resource
        content_type = "application/fhir+json"
        if entry.method == "PATCH":
            body, content_type = patch_body(entry)
        request = FhirRequest(
            method=entry.method,
            path=path,
            params=parse_query(query, "request.url", f"{entry.where}.request.url"),
            body=body,
            content_type=content_type,
            if_match=entry.request.get("ifMatch"),
            if_none_match=entry.request.get("ifNoneMatch"),
            if_none_exist=None if entry.assigned else entry.request.get("ifNoneExist"),
            if_modified_since=entry.request.get("ifModifiedSince"),
            prefer_return="representation",
            prefer_handling=outer.prefer_handling,
            base_url=outer.base_url,
            in_bundle=True,
        )
        extra = {"assigned_id": entry.assigned} if entry.assigned else dict(entry.extra)
        if entry.method == "POST" and path.strip("/") == "":
            raise bad_request("A Bundle entry cannot post a nested batch or transaction", entry.where)
        return self.api.dispatch(request, repo, extra)

    def response_entry(self, response: FhirResponse, outer: FhirRequest) -> str:
        result: dict[str, Any] = {"status": STATUS_TEXT.get(response.status, str(response.status))}
        stored = response.stored
        if stored is not None and stored.version and response.status < 300:
            result["location"] = f"{stored.type}/{stored.id}/_history/{stored.version}"
            result["etag"] = stored.etag
            result["lastModified"] = format_instant(stored.updated)
        if response.status >= 400:
            result["outcome"] = response.body
            return dumps({"response": result})
        preference = outer.prefer_return or "minimal"
        if preference == "OperationOutcome" and stored is not None:
            result["outcome"] = information(f"{result['status']}: {stored.type}/{stored.id}")
        parts = []
        body = response.body
        if (preference == "representation" or stored is None) and body is not None:
            text = body if isinstance(body, str) else dumps(body)
            if stored is not None:
                parts.append('"fullUrl":' + dumps(f"{outer.base_url}/{stored.type}/{stored.id}"))
            parts.append('"resource":' + text)
        parts.append('"response":' + dumps(result))
        return "{" + ",".join(parts) + "}"

    @staticmethod
    def locate(exc: FhirError, entry: Entry | None) -> FhirError:
        """Point an entry's error at the entry (`Bundle.entry[3]`) as well as at its own location."""
        if entry is None:
            return exc
        issues = [
            Issue(issue.code, f"{entry.where} ({entry.method} {entry.url.split('?')[0]}): {issue.diagnostics}",
                  (entry.where, *issue.expression), severity=issue.severity, details=issue.details)
            for issue in exc.issues
        ]
        return FhirError(exc.status, issues, exc.headers)


def patch_body(entry: Entry) -> tuple[Any, str]:
    """The patch document of a PATCH entry: a Binary holding JSON Patch, or a Parameters resource."""
    resource = entry.resource
    if isinstance(resource, dict) and resource.get("resourceType") == "Binary":
        content_type = resource.get("contentType", "")
        if content_type not in JSON_PATCH_TYPES:
            raise bad_request(f"A PATCH entry's Binary must hold application/json-patch+json, not {content_type!r}",
                              entry.where)
        try:
            data = base64.b64decode(resource.get("data", ""), validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise bad_request(f"The PATCH entry's Binary data is not base64: {exc}", entry.where) from exc
        return jsontext.parse(data, "The PATCH entry's Binary data"), content_type
    if isinstance(resource, dict) and resource.get("resourceType") == "Parameters":
        return resource, "application/fhir+json"
    raise bad_request("A PATCH entry needs a Binary (JSON Patch) or Parameters (FHIRPath Patch) resource",
                      entry.where)


def is_bundle(resource: Any) -> bool:
    """Whether an entry's resource is itself a Bundle (a document or collection, whose references
    resolve among its own entries)."""
    return isinstance(resource, dict) and resource.get("resourceType") == "Bundle"
