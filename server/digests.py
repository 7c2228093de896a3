"""Digests of bundled files and code, so that what was made with them can tell when they change."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import resources
from importlib.resources.abc import Traversable

CODE_SUFFIXES = (".py", ".yaml", ".yml", ".json", ".tsv", ".csv")


def files_under(root: Traversable, suffixes: tuple[str, ...] = CODE_SUFFIXES) -> list[Traversable]:
    """The files below a folder with one of the suffixes (caches left out), in a stable order."""
    stack, found = [root], []
    while stack:
        folder = stack.pop()
        for entry in folder.iterdir():
            if entry.is_dir() and entry.name != "__pycache__":
                stack.append(entry)
            elif entry.name.endswith(suffixes):
                found.append(entry)
    return sorted(found, key=lambda item: str(item))


def tree_digest(packages: Iterable[str], suffixes: tuple[str, ...] = CODE_SUFFIXES) -> str:
    """A digest of the names and contents of the files of packages or package data folders
    (`"profiles/rulesets"` names a folder inside the `profiles` package)."""
    digest = hashlib.blake2b(digest_size=16)
    for package in packages:
        name, _, inner = package.partition("/")
        root = resources.files(name)
        for part in filter(None, inner.split("/")):
            root = root.joinpath(part)
        for entry in files_under(root, suffixes):
            digest.update(entry.name.encode())
            digest.update(entry.read_bytes())
    return digest.hexdigest()
