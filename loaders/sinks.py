"""Where loads go: one interface, ``Sink.post(bundle) -> response bundle``, in-process or over HTTP."""

from __future__ import annotations

import time
from typing import Any, Protocol

import orjson
import requests

HISTORY_PROBE = "_history?_count=1"


class SinkError(Exception):
    """The server refused a whole Bundle: HTTP status and its OperationOutcome."""

    def __init__(self, status: int, outcome: dict[str, Any] | None) -> None:
        self.status = status
        self.outcome = outcome or {}
        super().__init__(f"{status}: {self.diagnostics}")

    @property
    def diagnostics(self) -> str:
        issues = self.outcome.get("issue", []) if isinstance(self.outcome, dict) else []
        text = "; ".join(str(i.get("diagnostics") or i.get("code")) for i in issues)
        return text or "the server refused the request"

    @property
    def codes(self) -> set[str]:
        issues = self.outcome.get("issue", []) if isinstance(self.outcome, dict) else []
        return {str(i.get("code")) for i in issues}


class SinkUnavailable(Exception):
    """The server could not be reached or failed (5xx): the load stops, it is not a row problem."""


class Sink(Protocol):
    """Posts batch and transaction Bundles to a FHIR server."""

    name: str

    def post(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """The response Bundle; raises SinkError when the Bundle is refused, SinkUnavailable on failure."""
        ...

    def clock(self) -> int:
        """A server-side time in microseconds no later than any version written after this call."""
        ...

    def ledger(self) -> Any:
        """The server's load ledger (``server.store.ledger.LoadLedger``) when it is in this process, else None."""
        ...

    def close(self) -> None:
        ...


class InProcessSink:
    """Calls the FHIR API of an app built in this process (the server's one write path, no HTTP)."""

    def __init__(self, api: Any, caller: Any, base_url: str = "", owns: Any = None) -> None:
        self.api = api
        self.caller = caller
        self.base_url = base_url
        self.name = "in-process"
        self._owns = owns

    @classmethod
    def from_settings(cls, settings: Any, source: str) -> InProcessSink:
        """Build the Flask app from Settings once and post as ``Caller.system("loader:<source>")``."""
        from server.app import create_app
        from server.security.context import Caller

        app = create_app(settings)
        return cls(app.extensions["sharedcare"], Caller.system(f"loader:{source}"), settings.base_url, owns=app)

    @classmethod
    def from_app(cls, app: Any, source: str) -> InProcessSink:
        from server.security.context import Caller

        api = app.extensions["sharedcare"]
        return cls(api, Caller.system(f"loader:{source}"), api.base_url)

    def post(self, bundle: dict[str, Any]) -> dict[str, Any]:
        from server.api.model import FhirRequest
        from server.fhir.outcome import FhirError

        body = orjson.loads(orjson.dumps(bundle))  # the server rewrites references in place
        request = FhirRequest(method="POST", path="", body=body, base_url=self.base_url, prefer_return="minimal")
        try:
            response = self.api.handle(request, self.caller)
        except FhirError as exc:
            raise SinkError(exc.status, exc.outcome()) from None
        text = response.body
        parsed = orjson.loads(text) if isinstance(text, (str, bytes)) else text
        if response.status >= 400:
            raise SinkError(response.status, parsed)
        return parsed

    def clock(self) -> int:
        return time.time_ns() // 1000

    def ledger(self) -> Any:
        from server.store.ledger import LoadLedger

        return LoadLedger(self.api.services.database)

    def close(self) -> None:
        if self._owns is not None:
            self.api.services.database.dispose()
            self._owns = None


class HttpSink:
    """Posts Bundles to any FHIR server's base URL with a ``requests.Session`` (a Bearer token, or an `auth`
    that gets and renews them, when given)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 600.0,
                 auth: requests.auth.AuthBase | None = None) -> None:
        self.url = url.rstrip("/")
        self.name = self.url
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"Content-Type": "application/fhir+json", "Accept": "application/fhir+json",
                                     "Prefer": "return=minimal"})
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.auth = auth  # e.g. a SMART Backend Services client renewing its tokens

    def post(self, bundle: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.session.post(self.url, data=orjson.dumps(bundle), timeout=self.timeout)
        except requests.RequestException as exc:
            raise SinkUnavailable(f"{self.url}: {exc}") from exc
        if response.status_code >= 500:
            raise SinkUnavailable(f"{self.url}: HTTP {response.status_code} {response.text[:300]}")
        try:
            parsed = orjson.loads(response.content) if response.content else {}
        except orjson.JSONDecodeError:
            raise SinkUnavailable(f"{self.url}: HTTP {response.status_code}, not JSON: "
                                  f"{response.text[:300]}") from None
        if response.status_code >= 400:
            raise SinkError(response.status_code, parsed)
        return parsed

    def clock(self) -> int:
        """The newest version's lastUpdated on the server (system history) plus one microsecond: versions
        written later are at least this, so no agreement between the two machines' clocks is assumed."""
        from .fhir import instant_us

        try:
            response = self.session.get(f"{self.url}/{HISTORY_PROBE}", timeout=self.timeout)
        except requests.RequestException as exc:
            raise SinkUnavailable(f"{self.url}: {exc}") from exc
        if response.status_code != 200:
            return 0
        entries = response.json().get("entry", [])
        if not entries:
            return 0
        entry = entries[0]
        updated = (entry.get("resource") or {}).get("meta", {}).get("lastUpdated") or \
            (entry.get("response") or {}).get("lastModified")
        return instant_us(updated) + 1 if updated else 0

    def ledger(self) -> Any:
        return None  # another process's database: every row is mapped and compared through the API

    def close(self) -> None:
        self.session.close()
