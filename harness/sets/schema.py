"""Field types of the manifest schema, and one-line messages for what fails them.

Every field is exactly typed (strict: no string-to-number or number-to-string coercion, no
``true`` for 1), every string and collection is bounded, and every artifact path must stay
inside the set (:func:`harness.storage.base.key_problem`): a manifest is read from a bucket
that others can write to.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from annotated_types import MaxLen
from pydantic import AfterValidator, Field, ValidationError

from harness.sets.jsondoc import iso_time
from harness.storage.base import key_problem, shown

INT64_MAX = 2**63 - 1
KINDS = frozenset(
    {"dump-custom", "dump-directory", "globals", "globals-sql", "section-sql", "fingerprint"}
)
DUMP_FORMATS = frozenset({"custom", "directory"})
MANIFEST_NAME = "manifest.json"


def _printable(value: str) -> str:
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise ValueError("contains a control character")
    return value


def _no_nul(value: str) -> str:
    # PostgreSQL names may hold any character but NUL.
    if "\x00" in value or any(unicodedata.category(c) == "Cs" for c in value):
        raise ValueError("contains NUL or invalid Unicode")
    return value


def _artifact_path(value: str) -> str:
    problem = key_problem(value)
    if problem:
        raise ValueError(f"artifact path {shown(value)} {problem}; paths must stay inside the set")
    if value == MANIFEST_NAME:
        raise ValueError("the manifest cannot list itself as an artifact")
    return value


def _one_of(allowed: frozenset[str]) -> AfterValidator:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"{shown(value, limit=40)} is not one of {', '.join(sorted(allowed))}")
        return value

    return AfterValidator(check)


ArtifactPath = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_artifact_path)]
Size = Annotated[int, Field(ge=0, le=INT64_MAX)]
Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Kind = Annotated[str, _one_of(KINDS)]
DumpFormat = Annotated[str, _one_of(DUMP_FORMATS)]
Name = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_no_nul)]
DbName = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_printable)]
Timestamp = Annotated[str, Field(max_length=64), AfterValidator(iso_time)]
Version = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_printable)]
Major = Annotated[int, Field(ge=1, le=999)]
SystemId = Annotated[str, Field(pattern=r"^[0-9]{1,20}$")]
Lsn = Annotated[str, Field(pattern=r"^[0-9A-F]{1,8}/[0-9A-F]{1,8}$")]
FormatVersion = Annotated[int, Field(ge=1, le=1)]
ToolName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_printable)]
ToolVersion = Annotated[str, Field(max_length=256), AfterValidator(_printable)]
Tools = Annotated[dict[ToolName, ToolVersion], MaxLen(64)]
Note = Annotated[str, Field(max_length=2000), AfterValidator(_printable)]
Warnings = Annotated[tuple[Note, ...], MaxLen(1000)]
Extra = Annotated[dict[ToolName, Any], MaxLen(64)]

# Artifacts, tables, sequences: one per file or object; a million is far beyond real sets.
MANY = MaxLen(1_000_000)


def one_line(exc: ValidationError) -> str:
    """The first schema violation as one line: where in the manifest, and what is wrong."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = _location(first["loc"])
    kind = first["type"]
    if kind in ("missing", "missing_argument"):
        what = " is missing"
    elif kind == "unexpected_keyword_argument":
        what = " is not a field of this manifest format"
    else:
        what = str(first["msg"]).removeprefix("Value error, ").removeprefix("Input ")
        what = ": " + what[:1].lower() + what[1:]
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"manifest.json: {where or 'the document'}{what}{more}"


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if part.isidentifier() else shown(part, limit=40)
            out += f".{name}" if out else name
    return out
