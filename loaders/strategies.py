"""How mapped resources are written: upsert (conditional update on the source identifier), keep-unchanged
(left alone when only the kept elements differ) and status-history (EpisodeOfCare.statusHistory)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from mappings import Mapped

from .fhir import FhirClient, version_of
from .plan import Plan, Planned, for_write, left_as_is, put_by_id, put_conditional, same


def upsert(index: int, mapped: Mapped, provenance: str | None) -> Planned:
    assert mapped.identity is not None
    system, value = mapped.identity
    resource = for_write(mapped.resource, provenance)
    return Planned(mapped.type, [index], put_conditional(resource, system, value, mapped.full_url))


def with_status_history(current: dict[str, Any], new: dict[str, Any], changed_at: str | None) -> dict[str, Any]:
    """``new`` carrying the current statusHistory, plus the current status when the status changes."""
    history = [dict(h) for h in current.get("statusHistory", [])]
    old = current.get("status")
    if old and old != new.get("status"):
        since = (history[-1].get("period") or {}).get("end") if history else None
        since = since or (current.get("period") or {}).get("start")
        period = {k: v for k, v in (("start", since), ("end", changed_at or since)) if v}
        history.append({"status": old, "period": period} if period else {"status": old})
    merged = dict(new)
    if history:
        merged["statusHistory"] = history
    else:
        merged.pop("statusHistory", None)
    return merged


class Writer:
    """Plans the writes of the non-Patient resources of one batch."""

    def __init__(self, client: FhirClient | None, provenance: str | None) -> None:
        self.client = client
        self.provenance = provenance

    def plan(self, items: list[tuple[int, Mapped, dict[str, Any]]]) -> Plan:
        """items: (row index, mapped resource, the row's values)."""
        plan = Plan()
        merging: dict[tuple[str, str], list[tuple[int, Mapped, dict[str, Any]]]] = defaultdict(list)
        for index, mapped, values in items:
            if mapped.spec.strategy == "upsert" or self.client is None:
                plan.planned.append(upsert(index, mapped, self.provenance))
            else:
                assert mapped.identity is not None
                merging[(mapped.type, mapped.identity[0])].append((index, mapped, values))
        for (kind, system), group in merging.items():
            assert self.client is not None
            current = self.client.by_identifier(kind, system, [m.identity[1] for _, m, _ in group if m.identity])
            for index, mapped, values in group:
                assert mapped.identity is not None
                found = current.get(mapped.identity[1], [])
                if len(found) != 1:  # none: create; several: let the server refuse the ambiguous update
                    plan.planned.append(upsert(index, mapped, self.provenance))
                    continue
                plan.planned.append(self.merge(index, mapped, values, found[0]))
                plan.aliases[mapped.full_url] = f"{kind}/{found[0]['id']}"
        return plan

    def merge(self, index: int, mapped: Mapped, values: dict[str, Any], current: dict[str, Any]) -> Planned:
        write = mapped.spec.write
        new = dict(mapped.resource)
        new["id"] = current["id"]
        if write["strategy"] == "keep-unchanged":
            keep = tuple(str(k) for k in write.get("keep", []))
            if same(current, new, ignore=keep):
                return left_as_is(mapped.type, [index], current)
        elif write["strategy"] == "status-history":
            changed = str(write.get("changed", ""))
            changed_at = values.get(changed[1:]) if changed.startswith("$") else None
            new = with_status_history(current, new, changed_at)
        if same(current, new):
            return left_as_is(mapped.type, [index], current)
        return Planned(mapped.type, [index], put_by_id(for_write(new, self.provenance), mapped.full_url,
                                                       version_of(current)))
