"""Reading an extract file: file-level checks first, then RFC 4180 records with line numbers and
per-line decoding (an undecodable line rejects its record, never the file)."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DELIMITERS = (";", "\t", "|")
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class FileFault(Exception):
    """A fault of the whole file (layout, delimiter, encoding setting): nothing of it is loaded."""


@dataclass
class Record:
    """One data record: its first physical line, its raw text, its trimmed values or the reason it is unreadable."""

    line: int
    raw: str
    values: dict[str, str]
    fault: tuple[str, str] | None = None  # (column, reason)


def resolve_encoding(name: str) -> str:
    """The codec's canonical name; a FileFault for an unknown one."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise FileFault(f"unknown encoding {name!r} (use e.g. utf-8-sig, utf-8 or cp1252)") from None


class ExtractReader:
    """An extract CSV file read with one encoding against the columns its mapping knows."""

    def __init__(self, path: Path, encoding: str, required: list[str], known: list[str]) -> None:
        self.path = path
        self.encoding = resolve_encoding(encoding)
        self.required = required
        self.known = known
        self.header: list[str] = []
        self.warnings: list[str] = []
        self._data: bytes | None = None

    @property
    def data(self) -> bytes:
        if self._data is None:
            try:
                self._data = self.path.read_bytes()
            except OSError as exc:
                raise FileFault(f"cannot read {self.path}: {exc.strerror or exc}") from None
        return self._data

    def codec(self) -> tuple[str, int]:
        """(codec for each line, bytes to skip at the start)."""
        data = self.data
        if data.startswith(UTF16_BOMS):
            raise FileFault("the file is UTF-16 (it starts with a UTF-16 byte-order mark); extracts are UTF-8 or "
                            "Windows-1252 text")
        if self.encoding in ("utf-8-sig", "utf-8"):
            return "utf-8", len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
        if data.startswith(UTF8_BOM):
            raise FileFault(f"the file starts with a UTF-8 byte-order mark but the encoding is {self.encoding}; "
                            "load it with --encoding utf-8-sig")
        return self.encoding, 0

    def check(self) -> list[str]:
        """Read and check the header: required columns present, the comma delimiter, no duplicate names."""
        codec, skip = self.codec()
        first = self.data[skip:].split(b"\n", 1)[0]
        if not first.strip():
            raise FileFault("the file is empty: no header row")
        try:
            text = first.decode(codec)
        except UnicodeDecodeError as exc:
            raise FileFault(f"the header row cannot be decoded as {self.encoding}: {exc.reason} at byte "
                            f"{exc.start}") from None
        header = [name.strip() for name in next(csv.reader([text.rstrip("\r")]))]
        missing = [c for c in self.required if c not in header]
        if missing:
            for delimiter in DELIMITERS:
                split = [name.strip() for name in text.rstrip("\r").split(delimiter)]
                if delimiter in text and not [c for c in self.required if c not in split]:
                    shown = {"\t": "tab", ";": "';'", "|": "'|'"}[delimiter]
                    raise FileFault(f"the file is delimited by {shown}, not by commas (RFC 4180)")
            raise FileFault(f"missing required column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
        duplicates = sorted({name for name in header if header.count(name) > 1})
        if duplicates:
            raise FileFault(f"columns named more than once: {', '.join(duplicates)}")
        extra = [name for name in header if name not in self.known]
        if extra:
            self.warnings.append(f"ignored column{'s' if len(extra) > 1 else ''} not in the layout: "
                                 f"{', '.join(extra)}")
        self.header = header
        return self.warnings

    def rows_estimate(self) -> int:
        return max(0, self.data.count(b"\n") - 1)

    def __iter__(self) -> Iterator[Record]:
        if not self.header:
            self.check()
        codec, skip = self.codec()
        data = self.data[skip:]
        bad: dict[int, str] = {}
        line_no = 0

        def lines() -> Iterator[str]:
            nonlocal line_no
            start = 0
            size = len(data)
            while start < size:
                end = data.find(b"\n", start)
                end = size if end < 0 else end + 1
                chunk = data[start:end]
                start = end
                line_no += 1
                try:
                    yield chunk.decode(codec)
                except UnicodeDecodeError as exc:
                    bad[line_no] = (f"undecodable bytes for encoding {self.encoding}: {exc.reason} "
                                    f"(byte 0x{chunk[exc.start]:02X} at position {exc.start + 1} of the line)")
                    yield chunk.decode(codec, errors="replace")

        texts: dict[int, str] = {}
        source = lines()

        def remembered() -> Iterator[str]:
            for text in source:
                texts[line_no] = text
                yield text

        reader = csv.reader(remembered())
        header = self.header
        width = len(header)
        next(reader, None)
        texts.clear()
        first = 2
        for row in reader:
            last = line_no
            raw = "".join(texts[n] for n in range(first, last + 1) if n in texts).rstrip("\r\n")
            start, first = first, last + 1
            texts.clear()
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            fault = next(((("", bad[n])) for n in range(start, last + 1) if n in bad), None)
            if fault is None and len(row) != width:
                fault = ("", f"expected {width} fields, found {len(row)}")
            values = {} if fault else {name: value.strip() for name, value in zip(header, row, strict=True)}
            yield Record(start, raw, values, fault)
