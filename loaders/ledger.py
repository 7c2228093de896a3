"""Skipping rows unchanged since their last load.

The server's load ledger keeps, per row id of each extract file, a digest of the row's values and of
everything that decides how it maps (the mapping spec, the terminology, the loader and mapping code), the
resources the row wrote (type, id, version) and the references it resolved. On the next load a row is
skipped - not mapped or written, and checked only against the plausibility rules a later extract date may
break (an age bound) - only when its digest is the same, every resource it wrote is still at that version
(so nothing changed them since: not the API, not another load, not a snapshot end) and every reference still
resolves to the same resource. Anything else loads the row in full, as if there were no ledger. Only
in-process loads keep a ledger; loads over HTTP always map every row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

import orjson

from mappings import FileMapper, Mappings
from server.digests import tree_digest

from .resolver import Lookup

if TYPE_CHECKING:
    from server.store.ledger import LoadLedger

CODE_PACKAGES = ("mappings", "loaders")
CODE_SUFFIXES = (".py", ".yaml", ".yml", ".json")
MAX_KEY = 255  # longer row ids are not kept (the ledger's key column)
ENV_ALWAYS = ("base", "org", "source")


@dataclass
class RowEntry:
    """What a row wrote, what it refers to, and the identities it stands for (for snapshot ends)."""

    wrote: list[tuple[str, str, int]] = field(default_factory=list)  # (type, id, version)
    refers: list[tuple[str, str, str, str]] = field(default_factory=list)  # (type, system, value, id)
    identities: list[tuple[str, str, str]] = field(default_factory=list)  # (type, system, value)

    def dumps(self) -> str:
        return orjson.dumps({"w": self.wrote, "r": self.refers, "i": self.identities}).decode()

    @classmethod
    def loads(cls, text: str) -> RowEntry:
        data = orjson.loads(text)
        return cls([tuple(w) for w in data["w"]], [tuple(r) for r in data["r"]],  # type: ignore[misc]
                   [tuple(i) for i in data["i"]])


@cache
def code_digest() -> str:
    """A digest of the loader and mapping packages' code and bundled specs."""
    return tree_digest(CODE_PACKAGES, CODE_SUFFIXES)


def mappings_digest(mappings: Mappings) -> str:
    """A digest of the code and the terminology a Mappings instance maps with."""
    terminology = mappings.terminology
    digest = hashlib.blake2b(code_digest().encode(), digest_size=16)
    digest.update(terminology.base.encode())
    for part in (terminology.code_systems, terminology.value_sets, terminology.concept_maps):
        digest.update(orjson.dumps(part, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


def file_fingerprint(base_digest: str, mapper: FileMapper) -> bytes:
    """What decides how one file's rows map: code and terminology, the spec, and the extract's environment
    (the extract date only where the spec maps with it, so an unchanged row of next month's extract is skipped;
    the rules a later extract date may break are checked again on each row the ledger skips:
    ``FileMapper.still_plausible``)."""
    raw = mapper.mapping.raw
    spec = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS, default=str)
    maps = orjson.dumps({k: v for k, v in raw.items() if k != "rules"}, option=orjson.OPT_SORT_KEYS, default=str)
    used = [k for k in sorted(mapper.env) if k in ENV_ALWAYS or (k != "provenance" and k.encode() in maps)]
    env = orjson.dumps({k: mapper.env[k] for k in used}, default=str)
    return hashlib.blake2b(base_digest.encode() + spec + env, digest_size=16).digest()


class RowSkipper:
    """The ledger of one extract file: which rows may be skipped, and what the loaded rows wrote."""

    def __init__(self, ledger: LoadLedger, stream: str, fingerprint: bytes) -> None:
        self.ledger = ledger
        self.stream = stream
        self.fingerprint = fingerprint
        self.known = ledger.entries(stream)
        self.pending: dict[str, tuple[str, str]] = {}

    def digest(self, values: dict[str, str]) -> str:
        return hashlib.blake2b(self.fingerprint + orjson.dumps(values), digest_size=16).hexdigest()

    def candidate(self, key: str | None, digest: str) -> RowEntry | None:
        """The recorded entry when the row is as it was last loaded (still to be confirmed)."""
        if key is None or len(key) > MAX_KEY:
            return None
        known = self.known.get(key)
        if known is None or known[0] != digest:
            return None
        return RowEntry.loads(known[1])

    def confirm(self, candidates: dict[str, RowEntry]) -> set[str]:
        """The keys whose written resources are at their recorded versions and are each the one live holder of
        their identifier, and whose references still find the same resources (the one live holder of the
        identifier, not merged away; or still none)."""
        wanted = {(kind, rid) for entry in candidates.values() for kind, rid, _version in entry.wrote}
        current = self.ledger.current_versions(wanted)
        alike = {key for key, entry in candidates.items()
                 if all(current.get((kind, rid)) == version for kind, rid, version in entry.wrote)
                 and all(fits(identity) for identity in entry.identities)
                 and all(fits((kind, system, value)) for kind, system, value, _rid in entry.refers)}
        lookups = {identity for key in alike for identity in candidates[key].identities}
        lookups.update((kind, system, value) for key in alike for kind, system, value, _rid in candidates[key].refers)
        holders = self.ledger.holders(lookups) if lookups else {}
        patients = {rid for key in alike for kind, _s, _v, rid in candidates[key].refers if kind == "Patient" and rid}
        linked = self.ledger.linked(patients) if patients else set()
        return {key for key in alike
                if all(sole_holder(holders.get(identity), identity[0], candidates[key])
                       for identity in candidates[key].identities)
                and all(holders.get((kind, system, value), set()) == ({rid} if rid else set()) and rid not in linked
                        for kind, system, value, rid in candidates[key].refers)}

    def remember(self, key: str | None, digest: str, entry: RowEntry) -> None:
        if key is not None and len(key) <= MAX_KEY:
            self.pending[key] = (digest, entry.dumps())

    def exclude(self, keys: set[str]) -> None:
        """These rows are mapped in full next time: their entries are dropped."""
        for key in keys:
            self.pending.pop(key, None)
        self.ledger.forget(self.stream, [key for key in keys if key in self.known])

    def flush(self) -> None:
        self.ledger.record(self.stream, self.pending)
        self.pending = {}

    def prune(self, present: set[str]) -> None:
        """After a full snapshot: drop the entries of rows it no longer holds."""
        self.ledger.forget(self.stream, [key for key in self.known if key not in present])


def fits(identity: tuple[str, str, str]) -> bool:
    """Whether an identifier is indexed whole (longer systems and values are cut to the index's width)."""
    return len(identity[1]) <= MAX_KEY and len(identity[2]) <= MAX_KEY


def sole_holder(holders: set[str] | None, kind: str, entry: RowEntry) -> bool:
    """The identifier is carried by exactly one live resource, the one the row wrote."""
    return holders is not None and len(holders) == 1 and \
        next(iter(holders)) in {rid for wrote_kind, rid, _version in entry.wrote if wrote_kind == kind}


def refers_of(found: dict[Lookup, str]) -> list[tuple[str, str, str, str]]:
    return [(kind, system, value, rid) for (kind, system, value), rid in sorted(found.items())]
