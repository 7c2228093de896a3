"""Rendering stored resources: Bundles built from stored JSON text, `_summary`, `_elements`, `_pretty`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson

from ..fhir import jsontext
from ..fhir.elements import ElementModel
from ..fhir.outcome import bad_request
from ..store.repository import StoredResource

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


def dumps(value: Any) -> str:
    return jsontext.dumps(value).decode()


def resource_url(base_url: str, stored: StoredResource) -> str:
    return f"{base_url}/{stored.type}/{stored.id}"


def bundle_text(fields: dict[str, Any], entries: list[str]) -> str:
    """A Bundle as JSON text: the given top-level fields then entries spliced in as stored text."""
    head = dumps({"resourceType": "Bundle", **fields})
    if not entries:
        return head
    return head[:-1] + ',"entry":[' + ",".join(entries) + "]}"


def entry_text(base_url: str, stored: StoredResource, body: str | None, extra: dict[str, Any]) -> str:
    """One Bundle entry with the resource body spliced in unparsed."""
    parts = ['{"fullUrl":', dumps(resource_url(base_url, stored))]
    if body is not None:
        parts += [',"resource":', body]
    for key, value in extra.items():
        parts += [",", dumps(key), ":", dumps(value)]
    parts.append("}")
    return "".join(parts)


def link(relation: str, url: str) -> dict[str, str]:
    return {"relation": relation, "url": url}


def page_url(base: str, params: list[tuple[str, str]]) -> str:
    return f"{base}?{urlencode(params)}" if params else base


class Subsetter:
    """Applies `_summary` and `_elements` to resource bodies (parsing only when asked to)."""

    def __init__(self, elements: ElementModel) -> None:
        self.elements = elements

    def apply(self, body: str | None, summary: str | None, wanted: list[str]) -> str | None:
        if body is None or ((summary in (None, "false")) and not wanted):
            return body
        resource = jsontext.loads(body)
        if summary == "data":
            resource.pop("text", None)
        elif summary == "text":
            resource = self.keep(resource, {"text", *self.mandatory(resource)})
        elif summary == "true":
            resource = self.keep(resource, self.summary_keys(resource))
        elif wanted:
            resource = self.keep(resource, {*wanted, *self.mandatory(resource)})
        return dumps(resource)

    def summary_keys(self, resource: dict[str, Any]) -> set[str]:
        children = self.elements.by_json_key(resource["resourceType"])
        return {key for key in resource if key in children and children[key][0].summary}

    def mandatory(self, resource: dict[str, Any]) -> set[str]:
        children = self.elements.by_json_key(resource["resourceType"])
        return {key for key in resource if key in children and children[key][0].min > 0}

    @staticmethod
    def keep(resource: dict[str, Any], keys: set[str]) -> dict[str, Any]:
        kept = {"resourceType": resource["resourceType"]}
        for key, value in resource.items():
            if key in keys or key in ("id", "meta"):
                kept[key] = value
        meta = dict(kept.get("meta", {}))
        meta["tag"] = [*meta.get("tag", []), SUBSETTED]
        kept["meta"] = meta
        return kept


def pretty(text: str) -> str:
    return jsontext.dumps(jsontext.loads(text), option=orjson.OPT_INDENT_2).decode()


def check_summary(value: str | None) -> str | None:
    if value is not None and value not in ("true", "text", "data", "count", "false"):
        raise bad_request("_summary must be one of true, text, data, count, false", "_summary")
    return value
