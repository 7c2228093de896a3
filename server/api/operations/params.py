"""Operation parameters from the query string (GET) or a Parameters resource (POST)."""

from __future__ import annotations

from typing import Any

from ...fhir.outcome import bad_request
from ..model import FhirRequest

Json = dict[str, Any]
VALUE_PREFIX = "value"


class OperationParams:
    """Named inputs of one operation call: strings, datatypes (Coding...) and resources."""

    def __init__(self, request: FhirRequest, body_resource_name: str | None = None) -> None:
        self.values: dict[str, list[Any]] = {}
        for name, value in request.query_params():
            self.values.setdefault(name, []).append(value)
        body = request.body
        if request.method == "POST" and body is not None:
            if not isinstance(body, dict):
                raise bad_request("The body must be a Parameters resource")
            if body.get("resourceType") == "Parameters":
                listed = body.get("parameter", [])
                if not isinstance(listed, list):
                    raise bad_request("Parameters.parameter must be a list", "Parameters.parameter")
                for index, parameter in enumerate(listed):
                    self.add(parameter, f"Parameters.parameter[{index}]")
            elif body_resource_name is not None:
                self.values.setdefault(body_resource_name, []).append(body)
            else:
                raise bad_request(f"The body must be a Parameters resource, not a {body.get('resourceType')}")

    def add(self, parameter: Json, where: str = "Parameters.parameter") -> None:
        if not isinstance(parameter, dict):
            raise bad_request("Every parameter must be a JSON object", where)
        name = parameter.get("name")
        if not isinstance(name, str):
            raise bad_request("Every parameter needs a name", f"{where}.name")
        if "resource" in parameter:
            self.values.setdefault(name, []).append(parameter["resource"])
            return
        for key, value in parameter.items():
            if key.startswith(VALUE_PREFIX):
                self.values.setdefault(name, []).append(value)
                return

    def get(self, name: str) -> Any:
        found = self.values.get(name)
        return found[0] if found else None

    def text(self, name: str) -> str | None:
        value = self.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise bad_request(f"Parameter {name!r} must be a string value", name)
        return value

    def require(self, name: str) -> str:
        value = self.text(name)
        if not value:
            raise bad_request(f"The operation needs the parameter {name!r}", name, code="required")
        return value

    def integer(self, name: str, default: int, maximum: int) -> int:
        value = self.get(name)
        if value is None:
            return default
        try:
            number = int(value)
        except (TypeError, ValueError) as exc:
            raise bad_request(f"Parameter {name!r} must be an integer", name) from exc
        if number < 0:
            raise bad_request(f"Parameter {name!r} must not be negative", name)
        return min(number, maximum)

    def resource(self, name: str) -> Json | None:
        value = self.get(name)
        if value is not None and not (isinstance(value, dict) and "resourceType" in value):
            raise bad_request(f"Parameter {name!r} must be a resource", name)
        return value

    def coding(self, name: str) -> Json | None:
        value = self.get(name)
        if value is not None and not isinstance(value, dict):
            raise bad_request(f"Parameter {name!r} must be a Coding", name)
        return value


def parameters(*parts: Json) -> Json:
    """A Parameters resource from parameter entries (entries with no value are left out)."""
    return {"resourceType": "Parameters", "parameter": [p for p in parts if len(p) > 1]}


def part(name: str, kind: str, value: Any) -> Json:
    """One parameter `{"name": name, "value<Kind>": value}`, or only the name when the value is empty."""
    if value is None or value == "":
        return {"name": name}
    return {"name": name, f"value{kind}": value}
