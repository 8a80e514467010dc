"""Names for what a drill creates on shared systems: databases and buckets, unique per run.

On an external server or S3 endpoint every run of every drill must work in names of its own:
a second nightly run must not meet the first one's leftovers (a bucket under Object Lock
cannot even be removed), and one drill must not meet another's. A name is built from

- the *run id*: a few random characters drawn once per test session;
- the drill's number in that session and the server's number in the drill (short, and
  unique by construction);
- the drill's own words (the database name it asked for, the test name for buckets) for
  people reading a listing.

Database names stay within :data:`MAX_DATABASE_NAME` bytes, well under PostgreSQL's 63, so
that names derived from them (a restore stages into ``<name>__restoring_<random>``) keep
their random part. Bucket names follow the S3 rules: 3 to 63 characters, lowercase letters,
digits and hyphens, starting and ending with a letter or digit.
"""

from __future__ import annotations

import re
import secrets

MAX_DATABASE_NAME = 40
MAX_BUCKET_NAME = 63
DATABASE_PREFIX = "drill_"
BUCKET_PREFIX = "drill-"


def new_run_id() -> str:
    """A fresh run id: six lowercase hex characters (16 million values)."""
    return secrets.token_hex(3)


def slug(text: str, *, separator: str, limit: int) -> str:
    """``text`` reduced to lowercase letters and digits joined by ``separator``, at most ``limit``.

    Args:
        text: any text (a test name, a server name ...).
        separator: what replaces every run of other characters (``_`` or ``-``).
        limit: the longest result; the cut never leaves a separator at either end.

    """
    words = re.sub(r"[^a-z0-9]+", separator, text.lower()).strip(separator)
    return words[:limit].strip(separator)


def drill_namespace(run_id: str, drill_number: int) -> str:
    """The prefix every database of one drill starts with, e.g. ``drill_1a2b3c_7_``."""
    return f"{DATABASE_PREFIX}{run_id}_{drill_number}_"


def server_namespace(drill: str, index: int) -> str:
    """The prefix of one server's databases within a drill, e.g. ``drill_1a2b3c_7_2_``.

    Args:
        drill: the drill's namespace, from :func:`drill_namespace`.
        index: the server's number within the drill (1, 2 ...).

    """
    return f"{drill}{index}_"


def database_name(namespace: str, dbname: str) -> str:
    """The physical name of database ``dbname`` within ``namespace`` (idempotent).

    Args:
        namespace: from :func:`server_namespace` (or :func:`drill_namespace`).
        dbname: the database name the drill asked for ("app"), or a name already mapped.

    Raises:
        ValueError: the namespace alone leaves no room for a database name.

    """
    if dbname.startswith(namespace):
        return dbname
    room = MAX_DATABASE_NAME - len(namespace)
    if room < 4:
        raise ValueError(f"namespace {namespace!r} leaves no room for database names")
    return namespace + (slug(dbname, separator="_", limit=room) or "db")


def bucket_name(run_id: str, test_name: str, number: int) -> str:
    """A bucket name unique to this run, e.g. ``drill-1a2b3c-test-ransomware-attack-3``.

    Args:
        run_id: from :func:`new_run_id`.
        test_name: the drill's test name, for people reading a bucket listing.
        number: the bucket's number in this run (unique within the run).

    """
    head = f"{BUCKET_PREFIX}{run_id}-"
    tail = f"-{number}"
    words = slug(test_name, separator="-", limit=MAX_BUCKET_NAME - len(head) - len(tail))
    return f"{head}{words}{tail}" if words else f"{head}{number}"


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid S3 bucket name, or None when it is."""
    if not 3 <= len(name) <= MAX_BUCKET_NAME:
        return f"{len(name)} characters (S3 allows 3 to {MAX_BUCKET_NAME})"
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", name):
        return "only lowercase letters, digits, '.' and '-', starting and ending alphanumeric"
    if ".." in name or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
        return "no '..' and no IP-address form"
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        return "a prefix or suffix S3 reserves"
    return None
