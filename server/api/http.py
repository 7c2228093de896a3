"""Flask glue: HTTP requests to FhirRequests, FhirResponses to HTTP, and the one error funnel."""

from __future__ import annotations

import logging
import re
import uuid
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

import orjson
from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from ..fhir.outcome import FhirError, Issue, operation_outcome
from ..security.context import Caller
from .app import FhirApi
from .model import FhirRequest, FhirResponse, parse_prefer
from .render import pretty

log = logging.getLogger(__name__)

CONTROL = re.compile(r"[\x00-\x1f]")
JSON_TYPES = ("application/fhir+json", "application/json", "application/json-patch+json")
XML_MARKERS = ("xml",)
FORMAT_ALIASES = {"json": "application/fhir+json", "application/json": "application/json",
                  "application/fhir+json": "application/fhir+json", "text/json": "application/json"}
JSON_ONLY = "This server speaks JSON only (application/fhir+json); XML and other formats are not supported"


def api() -> FhirApi:
    return current_app.extensions["sharedcare"]


def blueprint(fhir_path: str) -> Blueprint:
    bp = Blueprint("fhir", __name__, url_prefix=fhir_path if fhir_path != "/" else "")
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    bp.add_url_rule("", "base", fhir_endpoint, methods=methods, defaults={"path": ""})
    bp.add_url_rule("/", "root", fhir_endpoint, methods=methods, defaults={"path": ""})
    bp.add_url_rule("/<path:path>", "path", fhir_endpoint, methods=methods)
    return bp


def response_type() -> str:
    """The JSON media type to answer with; 406 when the client accepts only something else."""
    requested = request.args.get("_format")
    if requested is not None:
        chosen = FORMAT_ALIASES.get(requested.split(";")[0].strip())
        if chosen is None:
            raise FhirError(406, [Issue("not-supported", f"_format={requested}: {JSON_ONLY}", ("_format",))])
        return chosen
    return media_type_for_accept(request.environ.get("HTTP_ACCEPT", ""))


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


def read_body() -> tuple[Any, bytes, str, list[tuple[str, str]]]:
    """(parsed body, raw bytes, media type, form parameters) of the current request."""
    environ = request.environ
    if environ.get("CONTENT_LENGTH") in (None, "", "0") and "HTTP_TRANSFER_ENCODING" not in environ \
            and request.method in ("GET", "HEAD"):
        return None, b"", "", []  # a read with no body announced: nothing to parse
    raw = request.get_data(cache=False)
    media = (request.mimetype or "").lower()
    if not raw:
        return None, raw, media, []
    if media == "application/x-www-form-urlencoded":
        try:
            return None, raw, media, parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError as exc:
            raise FhirError(400, [Issue("structure", "The form body is not UTF-8")]) from exc
    if any(marker in media for marker in XML_MARKERS):
        raise FhirError(415, [Issue("not-supported", f"Content-Type {media}: {JSON_ONLY}")])
    if media and media not in JSON_TYPES and not media.endswith("+json"):
        raise FhirError(415, [Issue("not-supported", f"Content-Type {media} is not supported: send "
                                                     "application/fhir+json")])
    try:
        return orjson.loads(raw), raw, media or "application/fhir+json", []
    except orjson.JSONDecodeError as exc:
        raise FhirError(400, [Issue("structure", f"The body is not valid JSON: {exc}")]) from exc


def base_url() -> str:
    """The FHIR base URL: configured, or from the request's scheme, host and mount point."""
    config = current_app.config
    configured = config["SHAREDCARE_BASE_URL"]
    if configured:
        return configured
    environ = request.environ
    key = (environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST"), environ.get("SCRIPT_NAME"))
    known = api().base_urls
    found = known.get(key)
    if found is None:
        found = f"{request.scheme}://{request.host}{request.root_path}{config['SHAREDCARE_FHIR_PATH']}".rstrip("/")
        if len(known) < 256:  # Host headers are client input: remember only a bounded number
            known[key] = found
    return found


def caller(request_id: str | None) -> Caller:
    """The caller of this request (authentication will set it; until then a trusted client)."""
    return Caller(subject="client", request_id=request_id)


def refuse_control_characters(path: str) -> None:
    """Paths and parameters may not carry control characters (they are never valid FHIR values)."""
    for name, value in [("path", path), *request.args.items(multi=True)]:
        if CONTROL.search(name) or CONTROL.search(value):
            raise FhirError(400, [Issue("value", f"Control characters are not allowed in '{name}'", (name,))])


def fhir_endpoint(path: str) -> Response:
    environ = request.environ
    refuse_control_characters(path)
    media_type = response_type()
    body, raw, content_type, form = read_body()
    prefer_return, prefer_handling = parse_prefer(environ.get("HTTP_PREFER"))
    params = list(request.args.items(multi=True))
    request_id = environ.get("HTTP_X_REQUEST_ID")
    fhir_request = FhirRequest(
        method=request.method,
        path=path,
        params=params + form if form else params,
        body=body,
        raw_body=raw,
        content_type=content_type,
        if_match=environ.get("HTTP_IF_MATCH"),
        if_none_match=environ.get("HTTP_IF_NONE_MATCH"),
        if_none_exist=environ.get("HTTP_IF_NONE_EXIST"),
        if_modified_since=environ.get("HTTP_IF_MODIFIED_SINCE"),
        prefer_return=prefer_return,
        prefer_handling=prefer_handling,
        base_url=base_url(),
    )
    result = api().handle(fhir_request, caller(request_id))
    return to_http(result, media_type, request_id, pretty_output=request.args.get("_pretty") == "true")


def to_http(result: FhirResponse, media_type: str, request_id: str | None = None, *,
            pretty_output: bool = False) -> Response:
    body = result.body
    text = "" if body is None else body if isinstance(body, str) else orjson.dumps(body).decode()
    if text and pretty_output:
        text = pretty(text)
    headers = list(result.headers.items())
    if body is not None:
        headers.append(("Content-Type", f"{media_type}; charset=utf-8"))
    if request_id:
        headers.append(("X-Request-ID", request_id))
    return Response("" if request.method == "HEAD" else text, status=result.status, headers=headers)


def outcome_response(status: int, outcome: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    response = Response(orjson.dumps(outcome), status=status, headers=headers or {})
    response.headers["Content-Type"] = "application/fhir+json; charset=utf-8"
    return response


def install_error_funnel(app: Flask) -> None:
    """Every error becomes an OperationOutcome, here and nowhere else."""

    @app.errorhandler(FhirError)
    def on_fhir_error(exc: FhirError) -> Response:
        return outcome_response(exc.status, exc.outcome(), exc.headers)

    @app.errorhandler(HTTPException)
    def on_http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = {404: "not-found", 405: "not-supported", 413: "too-costly"}.get(status, "processing")
        message = exc.description or exc.name
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"The request body is larger than this server accepts ({limit} bytes)"
        return outcome_response(status, operation_outcome([Issue(code, message)]))

    @app.errorhandler(Exception)
    def on_unexpected(exc: Exception) -> Response:
        reference = request.headers.get("X-Request-ID") or str(uuid.uuid4())
        log.exception("unhandled error (request %s)", reference)
        issue = Issue("exception", f"Internal server error (request {reference}); the change was not made")
        return outcome_response(500, operation_outcome([issue]))
