"""Interaction handlers: each turns a FhirRequest into one repository call and a FhirResponse."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from ..fhir.dates import DateFormatError, now_us, parse_http_date, parse_range
from ..fhir.outcome import FhirError, Issue, bad_request, information, operation_outcome
from ..fhir.patch import JSON_PATCH_TYPES, fhirpath_patch, json_patch
from ..fhir.text import plain_int
from ..store.repository import StoredResource, WriteResult
from ..store.search.engine import SearchResult
from .model import FhirResponse, version_headers
from .render import bundle_text, entry_text, link, page_url
from .router import Interaction

DEFAULT_HISTORY_COUNT = 50
MAX_HISTORY_COUNT = 1000


# ------------------------------------------------------------------------ reads

def read(ix: Interaction) -> FhirResponse:
    stored = ix.repo.read(ix.type, ix.id)
    return not_modified(ix, stored) or FhirResponse.of_resource(stored)


def vread(ix: Interaction) -> FhirResponse:
    stored = ix.repo.vread(ix.type, ix.id, ix.vars["vid"])
    return not_modified(ix, stored) or FhirResponse.of_resource(stored)


def not_modified(ix: Interaction, stored: StoredResource) -> FhirResponse | None:
    """304 when If-None-Match names the current version or If-Modified-Since is not earlier."""
    request = ix.request
    if request.if_none_match:
        tags = {tag.strip() for tag in request.if_none_match.split(",")}
        if stored.etag in tags or f'"{stored.version}"' in tags or "*" in tags:
            return FhirResponse(304, None, version_headers(stored), stored)
    if request.if_modified_since:
        since = parse_http_date(request.if_modified_since)
        if since is None:
            try:
                since = parse_range(request.if_modified_since)[0]
            except DateFormatError:
                since = None
        if since is not None and stored.updated // 1_000_000 <= since // 1_000_000:
            return FhirResponse(304, None, version_headers(stored), stored)
    return None


# ----------------------------------------------------------------------- writes

def write_response(ix: Interaction, result: WriteResult) -> FhirResponse:
    """Status, ETag, Location and the body the client's Prefer header asks for."""
    stored = result.stored
    headers = version_headers(stored)
    if result.status in (200, 201) and stored.version:
        headers["Location"] = f"{ix.request.base_url}/{stored.location}"
    preference = ix.request.prefer_return or "representation"
    if preference == "minimal":
        body: Any = None
    elif preference == "OperationOutcome":
        body = information(result.message)
    else:
        body = stored.body
    return FhirResponse(result.status, body, headers, stored)


def create(ix: Interaction) -> FhirResponse:
    if ix.request.query_params():
        names = ", ".join(dict.fromkeys(name for name, _ in ix.request.query_params()))
        raise bad_request(f"A create takes no search parameters in its URL (got {names}): a conditional create "
                          "sends its criteria in the If-None-Exist header (in a Bundle, request.ifNoneExist)",
                          code="not-supported")
    body = ix.request.require_body()
    result = ix.repo.create(body, resource_type=ix.type, if_none_exist=ix.request.if_none_exist,
                            assigned_id=ix.vars.get("assigned_id"))
    return write_response(ix, result)


def update(ix: Interaction) -> FhirResponse:
    body = ix.request.require_body()
    if "id" not in body:
        raise bad_request(f"An update needs the id in the body (expected {ix.id!r})", f"{ix.type}.id")
    result = ix.repo.update(ix.type, ix.id, body, if_match=ix.request.if_match,
                            new=ix.vars.get("new_id") == ix.id)
    return write_response(ix, result)


def conditional_update(ix: Interaction) -> FhirResponse:
    query = criteria_of(ix)
    result = ix.repo.conditional_update(ix.type, query, ix.request.require_body(), if_match=ix.request.if_match)
    return write_response(ix, result)


def patch(ix: Interaction) -> FhirResponse:
    patcher = patcher_of(ix)
    result = ix.repo.patch(ix.type, ix.id, patcher, if_match=ix.request.if_match)
    return write_response(ix, result)


def conditional_patch(ix: Interaction) -> FhirResponse:
    criteria, matches = ix.repo.locked_matches(ix.type, criteria_of(ix), "Conditional patch")
    if len(matches) != 1:
        raise FhirError(412 if matches else 404, [Issue(
            "multiple-matches" if matches else "not-found",
            f"Conditional patch matched {len(matches)} resources ({criteria}); it needs exactly one")])
    result = ix.repo.patch(ix.type, matches[0][1], patcher_of(ix), if_match=ix.request.if_match)
    return write_response(ix, result)


def patcher_of(ix: Interaction) -> Any:
    content_type = ix.request.content_type
    if content_type in JSON_PATCH_TYPES:
        return json_patch(ix.request.body)
    if isinstance(ix.request.body, dict) and ix.request.body.get("resourceType") == "Parameters":
        return fhirpath_patch(ix.request.body)
    raise FhirError(415, [Issue(
        "not-supported",
        "PATCH takes a JSON Patch (Content-Type application/json-patch+json) or a FHIRPath Patch "
        "Parameters resource (application/fhir+json)")])


def delete(ix: Interaction) -> FhirResponse:
    result = ix.repo.delete(ix.type, ix.id, if_match=ix.request.if_match)
    return delete_response(ix, [result])


def conditional_delete(ix: Interaction) -> FhirResponse:
    results = ix.repo.conditional_delete(ix.type, criteria_of(ix))
    return delete_response(ix, results)


def delete_response(ix: Interaction, results: list[WriteResult]) -> FhirResponse:
    """The answer to a delete: the deletion's ETag only when exactly one resource was deleted (a
    conditional delete of several has no single version to name)."""
    stored = results[0].stored if len(results) == 1 else None
    headers = version_headers(stored) if stored is not None and stored.version else {}
    if ix.request.prefer_return == "minimal":
        return FhirResponse(204, None, headers, stored)
    messages = [r.message for r in results] or [f"No {ix.type} matched; nothing deleted"]
    return FhirResponse(200, information("; ".join(messages)), headers, stored)


def criteria_of(ix: Interaction) -> str:
    """The criteria of a conditional update, patch or delete as a query string (the repository puts them
    in canonical form, and refuses them when no parameter has a value)."""
    return urlencode(ix.request.query_params())


# ---------------------------------------------------------------------- search

def search_type(ix: Interaction) -> FhirResponse:
    result = ix.repo.search(ix.type, ix.request.query_params(), strict=ix.request.strict,
                            base_url=ix.request.base_url)
    return search_bundle(ix, result, f"{ix.request.base_url}/{ix.type}")


def search_system(ix: Interaction) -> FhirResponse:
    params = ix.request.query_params()
    result = ix.repo.search(None, params, strict=ix.request.strict, base_url=ix.request.base_url)
    types = ix.request.param("_type")
    applied = [("_type", types)] if types else []
    return search_bundle(ix, result, ix.request.base_url, applied)


def search_compartment(ix: Interaction) -> FhirResponse:
    if ix.type not in ix.services.search.compartment_owners:
        raise bad_request(f"{ix.type} has no compartment on this server")
    target = ix.vars["compartment"]
    result = ix.repo.search(target, ix.request.query_params(), strict=ix.request.strict,
                            compartment=(ix.type, ix.id), base_url=ix.request.base_url)
    return search_bundle(ix, result, f"{ix.request.base_url}/{ix.type}/{ix.id}/{target}")


def search_bundle(ix: Interaction, result: SearchResult, base: str,
                  fixed: list[tuple[str, str]] | None = None) -> FhirResponse:
    """A searchset Bundle: stored bodies spliced in, self/first/previous/next links."""
    query = result.query
    applied = [*(fixed or []), *[(k, v) for k, v in query.applied if k != "_count"]]
    count = [("_count", str(query.count))]
    here = offset_param(query.offset) + ([("_after", str(query.after))] if query.after is not None else [])
    links = [link("self", page_url(base, applied + count + here))]
    links.append(link("first", page_url(base, applied + count)))
    if query.offset > 0:
        previous = offset_param(max(0, query.offset - query.count))
        links.append(link("previous", page_url(base, applied + count + previous)))
    if result.has_next:
        following = offset_param(query.offset + query.count)
        if result.last_key is not None:
            following.append(("_after", str(result.last_key)))
        links.append(link("next", page_url(base, applied + count + following)))
    fields: dict[str, Any] = {"type": "searchset"}
    if result.total is not None:
        fields["total"] = result.total
    fields["link"] = links
    subset = ix.app.subsetter
    entries = []
    if query.summary != "count":
        for stored in result.matches:
            body = subset.apply(stored.body, query.summary, query.elements)
            entries.append(entry_text(ix.request.base_url, stored, body, {"search": {"mode": "match"}}))
        for stored in result.included:
            body = subset.apply(stored.body, query.summary, query.elements)
            entries.append(entry_text(ix.request.base_url, stored, body, {"search": {"mode": "include"}}))
    issues = [Issue("not-supported", f"Search parameter '{name}' is not supported and was ignored", (name,),
                    severity="warning") for name in query.ignored]
    if result.suppressed:
        issues.append(Issue("suppressed", "Some matches are withheld: the person has objected to sharing. In an "
                                          "emergency, state X-Purpose-Of-Use: ETREAT and X-Break-Glass-Reason "
                                          "(audited as a security alert).", severity="warning"))
    if issues:
        outcome = operation_outcome(issues)
        entries.append('{"resource":' + ix.app.dumps(outcome) + ',"search":{"mode":"outcome"}}')
    return FhirResponse(200, bundle_text(fields, entries))


def offset_param(offset: int) -> list[tuple[str, str]]:
    return [("_offset", str(offset))] if offset else []


# --------------------------------------------------------------------- history

def history_instance(ix: Interaction) -> FhirResponse:
    return history(ix, ix.type, ix.id, f"{ix.request.base_url}/{ix.type}/{ix.id}/_history")


def history_type(ix: Interaction) -> FhirResponse:
    return history(ix, ix.type, None, f"{ix.request.base_url}/{ix.type}/_history")


def history_system(ix: Interaction) -> FhirResponse:
    return history(ix, None, None, f"{ix.request.base_url}/_history")


def history(ix: Interaction, resource_type: str | None, resource_id: str | None, base: str) -> FhirResponse:
    request = ix.request
    known = {"_since", "_at", "_count", "_offset", "_snapshot", "_format", "_pretty"}
    unknown = [name for name, _ in request.params if name not in known]
    if unknown and request.strict:
        raise bad_request(f"Unknown history parameter '{unknown[0]}'", unknown[0])
    since = instant_param(request.param("_since"), "_since")
    at_text = request.param("_at")
    at = None
    if at_text is not None:
        try:
            at = parse_range(at_text)
        except DateFormatError as exc:
            raise bad_request(f"Invalid _at: {exc}", "_at", code="value") from exc
    count = bounded_int(request.param("_count"), "_count", DEFAULT_HISTORY_COUNT, MAX_HISTORY_COUNT)
    offset = bounded_int(request.param("_offset"), "_offset", 0, 10**7)
    snapshot = bounded_int(request.param("_snapshot"), "_snapshot", now_us(), 2**62)
    entries, more, total = ix.repo.history(resource_type, resource_id, since=since, at=at, count=count, offset=offset,
                                    snapshot=snapshot)
    fixed: list[tuple[str, str]] = []
    if request.param("_since"):
        fixed.append(("_since", request.param("_since") or ""))
    if at_text:
        fixed.append(("_at", at_text))
    fixed += [("_count", str(count)), ("_snapshot", str(snapshot))]
    links = [link("self", page_url(base, fixed + offset_param(offset))), link("first", page_url(base, fixed))]
    if offset:
        links.append(link("previous", page_url(base, fixed + offset_param(max(0, offset - count)))))
    if more:
        links.append(link("next", page_url(base, fixed + offset_param(offset + count))))
    texts = []
    for entry in entries:
        stored = entry.stored
        method = entry.method if entry.method in ("POST", "PUT", "DELETE") else "PUT"
        url = stored.type if method == "POST" else f"{stored.type}/{stored.id}"
        status = "201 Created" if stored.version == 1 else ("204 No Content" if stored.deleted else "200 OK")
        extra = {
            "request": {"method": method, "url": url},
            "response": {"status": status, "etag": stored.etag, "lastModified": instant_of(stored)},
        }
        texts.append(entry_text(request.base_url, stored, stored.body, extra))
    fields: dict[str, Any] = {"type": "history"}
    if total is not None:
        fields["total"] = total
    fields["link"] = links
    return FhirResponse(200, bundle_text(fields, texts))


def instant_of(stored: StoredResource) -> str:
    from ..fhir.dates import format_instant

    return format_instant(stored.updated)


def instant_param(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_range(value)[0]
    except DateFormatError as exc:
        raise bad_request(f"Invalid {name}: {exc}", name, code="value") from exc


def bounded_int(value: str | None, name: str, default: int, high: int) -> int:
    if value is None:
        return default
    number = plain_int(value)
    if number is None:
        raise bad_request(f"{name} must be a non-negative integer", name)
    return min(number, high)
