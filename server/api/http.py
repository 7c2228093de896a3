"""The FHIR REST API over WSGI: HTTP requests to FhirRequests, FhirResponses to HTTP, one error funnel."""

from __future__ import annotations

import logging
import random
import re
import traceback
import uuid
from collections.abc import Callable, Iterable
from functools import lru_cache
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import orjson
from flask import Flask, Response
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_options_header
from werkzeug.wsgi import get_content_length, get_host, get_input_stream

from ..fhir import jsontext
from ..fhir.outcome import FhirError, Issue, operation_outcome
from ..fhir.querystring import check_encoding, parse_query
from ..security.access_tokens import TOKEN_PATH
from ..security.authserver import AuthServer
from ..security.context import Caller
from ..security.events import BEARER, AuthEvent, AuthFailure
from ..security.scopes import ScopeSet
from ..security.smart import CONFIGURATION_PATH, JWKS_PATH, REVOKE_PATH
from ..store.db import OutcomeUnknown, connection_lost
from .app import FhirApi
from .faults import database_fault
from .model import FhirRequest, FhirResponse, parse_prefer
from .render import pretty

log = logging.getLogger(__name__)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]
Answer = tuple[int, list[tuple[str, str]], bytes]

CONTROL = re.compile(r"[\x00-\x1f]")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
JSON_TYPES = ("application/fhir+json", "application/json", "application/json-patch+json")
XML_MARKERS = ("xml",)
FORMAT_ALIASES = {"json": "application/fhir+json", "application/json": "application/json",
                  "application/fhir+json": "application/fhir+json", "text/json": "application/json"}
JSON_ONLY = "This server speaks JSON only (application/fhir+json); XML and other formats are not supported"
OUTCOME_TYPE = ("Content-Type", "application/fhir+json; charset=utf-8")
NO_BODY_STATUSES = (204, 304)
BODY_PIECE = 64 * 1024
MAX_REQUEST_ID = 128
LOGGED_TRACEBACK = 6000  # characters of a traceback logged (its innermost frames)
OPEN_READS = frozenset({"metadata"})  # FHIR paths any client may GET without a token
AUTH_PATHS = frozenset({TOKEN_PATH, REVOKE_PATH, JWKS_PATH, CONFIGURATION_PATH})
AUTH_FORM_BYTES = 64 * 1024
JSON_TYPE = ("Content-Type", "application/json; charset=utf-8")
NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))
HEADER_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\]')  # left out of quoted strings in WWW-Authenticate

AuthListener = Callable[[AuthEvent, Environ], None]
RefusalListener = Callable[[Caller, str, str, BaseException], None]
"""Told of a request refused before the API handled it (the caller, method, path and the refusal)."""
"""Called with every token request, revocation request and refused bearer token before it is answered."""


@lru_cache(maxsize=64)
def status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def wsgi_text(value: str) -> str:
    """A WSGI environ string (bytes as latin-1) as the UTF-8 text the client sent."""
    return value.encode("latin-1").decode("utf-8", "replace")


def first(params: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in params if key == name), None)


@lru_cache(maxsize=256)
def media_type_for_accept(accept: str) -> str:
    """The JSON media type an Accept header allows; 406 when it allows only something else."""
    if not accept.strip():
        return "application/fhir+json"
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if any(kind in ("application/fhir+json", "*/*", "application/*") or kind.endswith("+json") for kind in kinds):
        return "application/fhir+json"
    if "application/json" in kinds or "text/json" in kinds:
        return "application/json"
    if any(kind.startswith("text/") for kind in kinds) and not any("xml" in kind for kind in kinds):
        return "application/fhir+json"
    raise FhirError(406, [Issue("not-supported", f"Accept: {accept}: {JSON_ONLY}")])


def response_type(environ: Environ, params: list[tuple[str, str]]) -> str:
    """The JSON media type to answer with (`_format` first, then Accept); 406 when only another is allowed."""
    requested = first(params, "_format")
    if requested is not None:
        chosen = FORMAT_ALIASES.get(requested.split(";")[0].strip())
        if chosen is None:
            raise FhirError(406, [Issue("not-supported", f"_format={requested}: {JSON_ONLY}", ("_format",))])
        return chosen
    return media_type_for_accept(environ.get("HTTP_ACCEPT", ""))


def query_params(environ: Environ) -> list[tuple[str, str]]:
    """The URL's parameters, decoded; 400 when the percent-encoding of its path or query is broken."""
    raw_path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    check_encoding(wsgi_text(raw_path.split("?", 1)[0]), "The URL's path")
    query = environ.get("QUERY_STRING", "")
    if not query:
        return []
    return parse_query(wsgi_text(query), "The URL's query string")


def refuse_control_characters(path: str, params: list[tuple[str, str]]) -> None:
    """Paths and parameters may not carry control characters (they are never valid FHIR values)."""
    for name, value in [("path", path), *params]:
        if CONTROL.search(name) or CONTROL.search(value):
            raise FhirError(400, [Issue("value", f"Control characters are not allowed in '{name}'", (name,))])


def refuse_long_target(environ: Environ, max_target: int) -> None:
    """A URL (path and query) longer than `max_target` bytes is refused (414) with the way to send it."""
    length = len(environ.get("SCRIPT_NAME", "")) + len(environ.get("PATH_INFO", "")) + \
        len(environ.get("QUERY_STRING", "")) + 1
    if length > max_target:
        raise FhirError(414, [Issue("too-costly", f"The request URL is {length} bytes long, more than this server "
                                                  f"accepts ({max_target}): send a long search as POST "
                                                  "[base]/[type]/_search with its parameters in an "
                                                  "application/x-www-form-urlencoded body")])


def read_body(environ: Environ, method: str, max_bytes: int) -> tuple[Any, bytes, str, list[tuple[str, str]]]:
    """(parsed body, raw bytes, media type, form parameters) of a request; 413 past `max_bytes`."""
    if environ.get("CONTENT_LENGTH") in (None, "", "0") and "HTTP_TRANSFER_ENCODING" not in environ \
            and method in ("GET", "HEAD"):
        return None, b"", "", []  # a read with no body announced: nothing to parse
    raw = read_limited(environ, max_bytes)
    media = parse_options_header(environ.get("CONTENT_TYPE", ""))[0].lower()
    if not raw:
        return None, raw, media, []
    if media == "application/x-www-form-urlencoded":
        try:
            return None, raw, media, parse_query(raw.decode("utf-8"), "The form body")
        except UnicodeDecodeError as exc:
            raise FhirError(400, [Issue("structure", "The form body is not UTF-8")]) from exc
    if any(marker in media for marker in XML_MARKERS):
        raise FhirError(415, [Issue("not-supported", f"Content-Type {media}: {JSON_ONLY}")])
    if media and media not in JSON_TYPES and not media.endswith("+json"):
        raise FhirError(415, [Issue("not-supported", f"Content-Type {media} is not supported: send "
                                                     "application/fhir+json")])
    return jsontext.parse(raw), raw, media or "application/fhir+json", []


def read_limited(environ: Environ, max_bytes: int) -> bytes:
    """The request body, or 413 when it is (announced or turns out) larger than `max_bytes`; a body of
    unknown length is read only when the server frames it (chunked encoding, `wsgi.input_terminated`).
    A body the server cannot read (broken chunking, a client gone mid-body) is a 400."""
    length = get_content_length(environ)
    if length is not None and length > max_bytes:
        raise too_large(max_bytes)
    try:
        if length is not None:
            return get_input_stream(environ).read()
        if not environ.get("wsgi.input_terminated"):
            return b""
        stream, pieces, total = environ["wsgi.input"], [], 0
        while piece := stream.read(min(BODY_PIECE, max_bytes + 1 - total)):
            pieces.append(piece)
            total += len(piece)
            if total > max_bytes:
                raise too_large(max_bytes)
        return b"".join(pieces)
    except (FhirError, HTTPException):
        raise
    except Exception as exc:  # the WSGI server's own parse errors: the client's framing, not ours
        raise FhirError(400, [Issue("structure", f"The request body could not be read: {exc}")]) from exc


def too_large(max_bytes: int) -> FhirError:
    return FhirError(413, [Issue("too-costly", f"The request body is larger than this server accepts "
                                               f"({max_bytes} bytes)")])


def anonymous(request_id: str | None) -> Caller:
    """The caller of an open path (the CapabilityStatement): no client, no scopes."""
    return Caller(subject="anonymous", scopes=ScopeSet(()), kind="anonymous", request_id=request_id)


def json_answer(status: int, body: Any, *extra: tuple[str, str]) -> Answer:
    return status, [JSON_TYPE, *extra], orjson.dumps(body)


def read_form(environ: Environ) -> list[tuple[str, str]] | None:
    """The parameters of an application/x-www-form-urlencoded body (None when the body is another type)."""
    media = parse_options_header(environ.get("CONTENT_TYPE", ""))[0].lower()
    raw = read_limited(environ, AUTH_FORM_BYTES)
    if media != "application/x-www-form-urlencoded":
        return None
    try:
        return parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return None


def header_text(environ: Environ, name: str) -> str | None:
    """A header as the UTF-8 text the client sent (None when absent)."""
    value = environ.get(name)
    return None if value is None else wsgi_text(value)


def request_id_of(environ: Environ) -> str:
    """The request's id: the client's X-Request-ID (printable, at most 128 characters) or a new one; every
    answer carries it and the request's audit record keeps it."""
    given = environ.get("HTTP_X_REQUEST_ID", "")
    if not given or len(given) > MAX_REQUEST_ID or not given.isprintable():
        given = f"{random.getrandbits(128):032x}"  # a correlation id, not a secret: no system call
        environ["HTTP_X_REQUEST_ID"] = given
    return given


def outcome_answer(status: int, outcome: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
    return status, [*(headers or {}).items(), OUTCOME_TYPE], orjson.dumps(outcome)


class FhirHttp:
    """Serves the FHIR base path as a plain WSGI application (no per-request framework dispatch) and
    hands every other path, such as /health, to `fallback`."""

    def __init__(self, api: FhirApi, fallback: WsgiApp, *, fhir_path: str, base_url: str, max_bytes: int,
                 auth: AuthServer, reserved: tuple[str, ...] = ("/health",),
                 on_auth_event: AuthListener | None = None, on_refusal: RefusalListener | None = None,
                 max_target: int = 8000) -> None:
        self.api = api
        self.auth = auth
        self.on_auth_event = on_auth_event
        self.on_refusal = on_refusal
        self.fallback = fallback
        self.fhir_path = "" if fhir_path.strip("/") == "" else "/" + fhir_path.strip("/")
        self.base_url = base_url.rstrip("/")
        self.max_bytes = max_bytes
        self.reserved = reserved
        self.max_target = max_target

    def fhir_part(self, path: str) -> str | None:
        """The path below the FHIR base, or None when the path is not the FHIR API's."""
        prefix = self.fhir_path
        if not prefix:
            return None if path in self.reserved else path.lstrip("/")
        if path == prefix or path == prefix + "/":
            return ""
        if path.startswith(prefix + "/"):
            return path[len(prefix) + 1:]
        return None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = wsgi_text(environ.get("PATH_INFO", ""))
        below = self.fhir_part(path)
        if below is None:
            return self.fallback(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET").upper()
        request_id = request_id_of(environ)
        try:
            status, headers, body = self.answer_reconnecting(environ, method, below, request_id)
        except FhirError as exc:
            status, headers, body = outcome_answer(exc.status, exc.outcome(), exc.headers)
        except HTTPException as exc:  # from reading the body: the client went away
            status, headers, body = outcome_answer(*http_exception_outcome(exc))
        except Exception as exc:
            fault = database_fault(exc, method, below, query_params(environ), None)
            if fault is not None:
                log.warning("request %s: answered %s: %s", request_id, fault.status, type(exc).__name__)
                status, headers, body = outcome_answer(fault.status, fault.outcome(), fault.headers)
            else:
                status, headers, body = unexpected_answer(exc, request_id, writing=method not in ("GET", "HEAD"))
        headers.append(("X-Request-ID", request_id))
        if status not in NO_BODY_STATUSES:
            headers.append(("Content-Length", str(len(body))))
        start_response(status_line(status), headers)
        return [] if method == "HEAD" or status in NO_BODY_STATUSES else [body]

    def answer_reconnecting(self, environ: Environ, method: str, path: str, request_id: str | None) -> Answer:
        """The answer; once more when a database connection was found lost before the API took the request
        (checking its token: the body is not read yet), as the API itself does for its unit of work."""
        try:
            return self.answer(environ, method, path, request_id)
        except Exception as exc:
            if environ.get("sharedcare.handled") or isinstance(exc, OutcomeUnknown) or not connection_lost(exc):
                raise
            log.warning("request %s: checking its token again on a new connection", request_id)
            return self.answer(environ, method, path, request_id)

    def answer(self, environ: Environ, method: str, path: str, request_id: str | None) -> Answer:
        caller = anonymous(request_id)
        try:
            return self.handled(environ, method, path, request_id)
        except (FhirError, HTTPException) as exc:  # refused before the API saw it (it audits its own)
            if self.on_refusal is not None and not environ.get("sharedcare.handled"):
                self.on_refusal(environ.get("sharedcare.caller", caller), method, path, exc)
            raise

    def handled(self, environ: Environ, method: str, path: str, request_id: str | None) -> Answer:
        if method not in METHODS:
            allowed = ", ".join((*METHODS, "OPTIONS"))
            if method == "OPTIONS":
                return 200, [("Allow", allowed)], b""
            raise FhirError(405, [Issue("not-supported", f"{method} is not a FHIR interaction; use {allowed}")],
                            headers={"Allow": allowed})
        refuse_long_target(environ, self.max_target)
        params = query_params(environ)
        refuse_control_characters(path, params)
        base_url = self.request_base_url(environ)
        if path in AUTH_PATHS:
            return self.auth_path(environ, method, path, base_url, request_id)
        if path in OPEN_READS and method in ("GET", "HEAD"):
            caller = anonymous(request_id)
        else:
            try:
                caller = self.authenticate(environ, base_url, request_id)
            except AuthFailure as failure:
                return self.auth_answer(failure.event, environ, base_url)
        environ["sharedcare.caller"] = caller
        media_type = response_type(environ, params)
        body, raw, content_type, form = read_body(environ, method, self.max_bytes)
        prefer_return, prefer_handling = parse_prefer(environ.get("HTTP_PREFER"))
        fhir_request = FhirRequest(
            method=method,
            path=path,
            params=params + form if form else params,
            body=body,
            raw_body=raw,
            content_type=content_type,
            if_match=environ.get("HTTP_IF_MATCH"),
            if_none_match=environ.get("HTTP_IF_NONE_MATCH"),
            if_none_exist=header_text(environ, "HTTP_IF_NONE_EXIST"),
            if_modified_since=environ.get("HTTP_IF_MODIFIED_SINCE"),
            prefer_return=prefer_return,
            prefer_handling=prefer_handling,
            base_url=base_url,
            query_text=None if form else wsgi_text(environ.get("QUERY_STRING", "")),
        )
        environ["sharedcare.handled"] = True  # from here the API audits the request itself
        result = self.api.handle(fhir_request, caller)
        return rendered(result, media_type, pretty_output=first(params, "_pretty") == "true")

    def authenticate(self, environ: Environ, base_url: str, request_id: str | None) -> Caller:
        """The caller a request's bearer token names (AuthFailure when it has none that is valid)."""
        return self.auth.authenticate(environ.get("HTTP_AUTHORIZATION"), base_url,
                                      purpose=environ.get("HTTP_X_PURPOSE_OF_USE"),
                                      break_glass=header_text(environ, "HTTP_X_BREAK_GLASS_REASON"),
                                      request_id=request_id)

    def auth_path(self, environ: Environ, method: str, path: str, base_url: str, request_id: str | None) -> Answer:
        """The SMART paths: discovery and the server's JWKS (open, JSON whatever the Accept), the token
        endpoint (open) and token revocation (an administrator's bearer token)."""
        reading = method in ("GET", "HEAD")
        if path == CONFIGURATION_PATH and reading:
            return json_answer(200, self.auth.configuration(base_url))
        if path == JWKS_PATH and reading:
            return json_answer(200, self.auth.jwks(), ("Cache-Control", "max-age=300"))
        if method != "POST" and path in (TOKEN_PATH, REVOKE_PATH):
            return json_answer(405, {"error": "invalid_request", "error_description": f"{path} takes POST"},
                               ("Allow", "POST"), *NO_STORE)
        if method != "POST" or path not in (TOKEN_PATH, REVOKE_PATH):
            raise FhirError(405, [Issue("not-supported", f"{path} answers GET only")], headers={"Allow": "GET, HEAD"})
        caller = None
        if path == REVOKE_PATH:
            try:
                caller = self.authenticate(environ, base_url, request_id)
            except AuthFailure as failure:
                return self.auth_answer(failure.event, environ, base_url)
        form = read_form(environ)
        if form is None:
            return json_answer(400, {"error": "invalid_request", "error_description": "Send the parameters as "
                                     "application/x-www-form-urlencoded (UTF-8)"}, *NO_STORE)
        event = self.auth.token(form, base_url) if caller is None else self.auth.revoke(caller, form)
        return self.auth_answer(event, environ, base_url)

    def auth_answer(self, event: AuthEvent, environ: Environ, base_url: str) -> Answer:
        """The one place where token requests, revocations and refused bearer tokens become HTTP answers;
        `on_auth_event` (the audit) sees each first. A refused bearer is a 401 with an RFC 6750 challenge
        and an OperationOutcome; the others are OAuth JSON, never cached."""
        if self.on_auth_event is not None:
            self.on_auth_event(event, environ)
        if event.action == BEARER:
            challenge = f'Bearer realm="{HEADER_UNSAFE.sub("", base_url)}"'
            if event.error:
                description = HEADER_UNSAFE.sub("", event.description or "")
                challenge += f', error="{event.error}", error_description="{description}"'
            issue = Issue("login", event.description or "Authentication required")
            return outcome_answer(event.status, operation_outcome([issue]), {"WWW-Authenticate": challenge})
        return json_answer(event.status, event.body or {}, *NO_STORE)

    def request_base_url(self, environ: Environ) -> str:
        """The FHIR base URL: configured, or from the request's scheme, host and mount point."""
        if self.base_url:
            return self.base_url
        key = (environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST"), environ.get("SCRIPT_NAME"))
        known = self.api.base_urls
        found = known.get(key)
        if found is None:
            root = wsgi_text(environ.get("SCRIPT_NAME") or "").rstrip("/")
            found = f"{environ.get('wsgi.url_scheme', 'http')}://{get_host(environ)}{root}{self.fhir_path}"
            found = found.rstrip("/")
            if len(known) < 256:  # Host headers are client input: remember only a bounded number
                known[key] = found
        return found



def rendered(result: FhirResponse, media_type: str, *, pretty_output: bool = False) -> Answer:
    """Status, headers and body bytes of a FhirResponse."""
    body = result.body
    headers = list(result.headers.items())
    if body is None:
        return result.status, headers, b""
    text = body if isinstance(body, str) else jsontext.dumps(body).decode()
    headers.append(("Content-Type", f"{media_type}; charset=utf-8"))
    return result.status, headers, (pretty(text) if pretty_output and text else text).encode()


def http_exception_outcome(exc: HTTPException) -> tuple[int, dict[str, Any]]:
    """Status and OperationOutcome of a werkzeug HTTP error."""
    status = exc.code or 500
    code = {404: "not-found", 405: "not-supported", 413: "too-costly"}.get(status, "processing")
    return status, operation_outcome([Issue(code, exc.description or exc.name)])


def outcome_response(status: int, outcome: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    response = Response(orjson.dumps(outcome), status=status, headers=headers or {})
    response.headers["Content-Type"] = OUTCOME_TYPE[1]
    return response


def install_error_funnel(app: Flask) -> None:
    """Every error of the paths Flask serves (all but the FHIR API) becomes an OperationOutcome."""

    @app.errorhandler(HTTPException)
    def on_http_error(exc: HTTPException) -> Response:
        return outcome_response(*http_exception_outcome(exc))

    @app.errorhandler(Exception)
    def on_unexpected(exc: Exception) -> Response:
        status, _headers, body = unexpected_answer(exc, None, writing=False)
        return Response(body, status=status, headers={"Content-Type": OUTCOME_TYPE[1]})


def unexpected_answer(exc: BaseException, request_id: str | None, *, writing: bool) -> Answer:
    """A 500 for a failure nobody foresaw, logged with the request id the answer names (the error's text cut
    short: it may hold a whole statement or the client's input). Only a write says its change was not made
    (its transaction rolled back); a read changed nothing."""
    reference = request_id or str(uuid.uuid4())
    log.error("unhandled error (request %s): %s\n%s", reference, short_error(exc),
              "".join(traceback.format_tb(exc.__traceback__))[-LOGGED_TRACEBACK:])
    made = "; the change was not made" if writing else ""
    return outcome_answer(500, operation_outcome([Issue("exception", f"Internal server error (request "
                                                                      f"{reference}){made}")]))


def short_error(exc: BaseException, limit: int = 2000) -> str:
    """An exception's type and text, at most `limit` characters."""
    shown = f"{type(exc).__name__}: {exc}"
    return shown if len(shown) <= limit else shown[:limit] + f"... ({len(shown)} characters)"
