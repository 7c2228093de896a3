"""OperationOutcome building and the FhirError exception every layer raises."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome issue: what went wrong and, when known, where."""

    code: str
    diagnostics: str
    expression: tuple[str, ...] = ()
    severity: str = "error"
    details: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity, "code": self.code}
        if self.details:
            out["details"] = {"text": self.details}
        out["diagnostics"] = self.diagnostics
        if self.expression:
            out["expression"] = list(self.expression)
        return out


@dataclass
class FhirError(Exception):
    """An error with an HTTP status and the issues that explain it."""

    status: int
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return "; ".join(issue.diagnostics for issue in self.issues)

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """Render issues as an OperationOutcome resource."""
    rendered = [issue.to_json() for issue in issues]
    if not rendered:
        rendered = [{"severity": "information", "code": "informational", "diagnostics": "All OK"}]
    return {"resourceType": "OperationOutcome", "issue": rendered}


def error(status: int, code: str, diagnostics: str, expression: Sequence[str] | str = ()) -> FhirError:
    """Make a FhirError with a single issue."""
    if isinstance(expression, str):
        expression = (expression,)
    return FhirError(status, [Issue(code=code, diagnostics=diagnostics, expression=tuple(expression))])


def bad_request(diagnostics: str, expression: Sequence[str] | str = (), code: str = "invalid") -> FhirError:
    return error(400, code, diagnostics, expression)


def not_found(diagnostics: str) -> FhirError:
    return error(404, "not-found", diagnostics)


def gone(diagnostics: str) -> FhirError:
    return error(410, "deleted", diagnostics)


def conflict(diagnostics: str, code: str = "conflict") -> FhirError:
    return error(409, code, diagnostics)


def precondition_failed(diagnostics: str) -> FhirError:
    return error(412, "conflict", diagnostics)


def unprocessable(issues: list[Issue]) -> FhirError:
    return FhirError(422, issues)


def information(diagnostics: str) -> dict[str, Any]:
    """An informational OperationOutcome (used for Prefer: return=OperationOutcome)."""
    return operation_outcome([Issue(code="informational", diagnostics=diagnostics, severity="information")])
