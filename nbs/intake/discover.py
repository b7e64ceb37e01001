"""Finding and reading inbox files.

Files are read as text columns exactly as they arrived (the raw rows the database keeps);
typing and checks happen in :mod:`nbs.validate`. A file that cannot be read at all raises
:class:`UnreadableFile` with a reason for its error report.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from nbs import settings

Kind = Literal["specimens", "results"]

#: Contract columns of each kind, in contract order, and which are required.
SPECIMEN_COLUMNS: dict[str, bool] = {
    "specimen_id": True,
    "baby_id": True,
    "birth_at": True,
    "collected_at": True,
    "received_at": True,
    "sex": True,
    "birth_weight_g": False,
    "gestational_age_weeks": False,
    "transfusion": False,
    "parenteral_nutrition": False,
    "consent_cf": False,
    "specimen_quality": True,
    "submitter": False,
    "last_transfusion_at": False,
}
RESULT_COLUMNS: dict[str, bool] = {
    "specimen_id": True,
    "analyte": True,
    "value": False,
    "unit": True,
    "measured_at": True,
    "instrument": True,
    "plate_id": True,
    "well": False,
    "replicate": True,
    "flag": False,
}
COLUMNS: dict[str, dict[str, bool]] = {"specimens": SPECIMEN_COLUMNS, "results": RESULT_COLUMNS}
#: optional columns of a results file that describe a plate's wells (read when present)
WELL_COLUMNS = (
    "sample_type", "material", "material_level", "material_lot", "nominal", "ct", "kit_lot",
)  # fmt: skip


class UnreadableFile(Exception):
    """The file cannot be read as its kind at all (the reason goes in its error report)."""


@dataclass(frozen=True)
class InboxFile:
    """One file found in the inbox."""

    path: Path
    kind: Kind
    fmt: Literal["csv", "parquet", "export", "hl7"]
    sha256: str
    size: int
    #: the file as it was hashed (:func:`signature`); None: not known (built by hand)
    signature: Signature | None = None
    #: a symbolic link to the file (archived as a copy of its content; the target stays)
    link: bool = False
    #: an instrument's own export: the reader that recognised it (``nbs.intake.exports``)
    reader: str | None = None

    @property
    def name(self) -> str:
        """The file's name (no folder)."""
        return self.path.name

    def unchanged(self) -> bool:
        """The file is still what was hashed: same file (inode), size, modification and
        change times. Checked before its rows are kept and before it is moved, so a
        file overwritten or appended to during the run is never archived unread; a stat
        instead of hashing it again (a big file's hash takes seconds)."""
        return self.signature is None or signature(self.path) == self.signature


def file_kind(name: str) -> tuple[Kind, Literal["csv", "parquet", "hl7"]] | None:
    """The kind and format a file name declares (``*.specimens.csv`` ...), or None."""
    lower = name.lower()
    if lower.endswith(".hl7"):  # HL7 orders: their messages are rows (nbs.intake.orders)
        return "specimens", "hl7"
    kinds: tuple[Kind, ...] = ("specimens", "results")
    formats: tuple[Literal["csv", "parquet"], ...] = ("csv", "parquet")
    for kind in kinds:
        for fmt in formats:
            if lower.endswith(f".{kind}.{fmt}"):
                return kind, fmt
    return None


#: (inode, size, modification time, change time) of a file, times in nanoseconds. The
#: change time moves on every write and cannot be set back, unlike the modification time
#: (``cp -p``, ``touch -d``). Not the device: on shared storage a Dask worker on another
#: host numbers the same file system differently
Signature = tuple[int, int, int, int]


def _signature_of(st: os.stat_result) -> Signature:
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def signature(path: Path) -> Signature | None:
    """The file's :data:`Signature` now (through a link: its target's), None if gone."""
    try:
        return _signature_of(os.stat(path))
    except FileNotFoundError:
        return None


def sha256_of(path: Path) -> str:
    """Content hash: the identity of a file (same content = same file, whatever its name)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_unchanged(path: Path) -> tuple[str, Signature] | None:
    """The file's hash with its signature, or None when it changed while it was hashed
    (still being written after all). Both from one open file: the signature is that of
    the bytes hashed, even if the name is given to another file meanwhile."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        before = _signature_of(os.fstat(fh.fileno()))
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
        after = _signature_of(os.fstat(fh.fileno()))
    return (digest.hexdigest(), after) if before == after else None


@dataclass(frozen=True)
class Stability:
    """How long a file must stay unchanged before it is read (an instrument or a transfer
    may still be writing it), and how long a run waits for that at most."""

    settle_s: float
    wait_s: float
    poll_s: float = 0.25

    @classmethod
    def from_settings(cls) -> Stability:
        """The settings' ``inbox_settle_s`` (0: read at once, for a process that wrote
        the files itself, like ``nbs demo`` and the tests) and ``inbox_wait_s``, a wait
        of at least three settle times."""
        current = settings.current()
        settle = current.inbox_settle_s
        return cls(settle_s=settle, wait_s=max(current.inbox_wait_s, 3 * settle))


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


def wait_until_stable(paths: list[Path], rule: Stability) -> tuple[list[Path], list[Path]]:
    """(stable, still changing): a file is stable once it was last written at least
    ``rule.settle_s`` ago and its size has not moved meanwhile. Files still changing after
    ``rule.wait_s`` are left in the inbox for the next run."""
    import time

    deadline = time.monotonic() + rule.wait_s
    pending = {p: _signature(p) for p in paths}
    stable: list[Path] = []
    while True:
        now = time.monotonic()
        for path, seen in list(pending.items()):
            current = _signature(path)
            if current is None:  # moved away meanwhile: not ours to read
                del pending[path]
            elif current != seen:
                pending[path] = current
            elif time.time() - current[1] / 1e9 >= rule.settle_s:
                stable.append(path)
                del pending[path]
        if not pending or now >= deadline:
            return sorted(stable), sorted(pending)
        time.sleep(rule.poll_s)


def _not_readable(path: Path) -> str | None:
    """Why an inbox entry named like an inbox file is not read, or None for a file (or a
    link to one). A folder, a link to nothing or a pipe would otherwise be passed over
    in silence, and a laboratory waits for results that never come."""
    if path.is_symlink() and not path.exists():
        return "a link to nothing: not read"
    if path.is_dir():
        return f"a {'link to a ' if path.is_symlink() else ''}folder, not a file: not read"
    if not path.is_file():
        return "not a regular file: not read"
    return None


def discover(
    inbox: Path,
    stability: Stability | None = None,
    recognise: Callable[[Path], str | None] | None = None,
) -> tuple[list[InboxFile], list[Path], list[Path]]:
    """Inbox files of a known kind (sorted by name), the other entries left in place, and
    files still being written (left for the next run).

    A file of no known name is an instrument export when ``recognise`` names the reader
    that knows its content (:func:`nbs.intake.exports.recogniser`). Left in place,
    returned with the reason added to their name (``x.results.csv (a folder, not a file:
    not read)``): files of no known kind, and entries named like inbox files that cannot
    be read (a folder, a link to nothing...). Other folders (the archive, the quarantine)
    and hidden entries are passed over."""
    candidates: dict[Path, str | None] = {}
    ignored: list[Path] = []
    for path in sorted(inbox.iterdir()):
        if path.name.startswith("."):
            continue
        if file_kind(path.name) is None:
            reader = recognise(path) if recognise and _not_readable(path) is None else None
            if reader is not None:
                candidates[path] = reader
            elif path.is_file():
                ignored.append(path.with_name(f"{path.name} (not a known file kind)"))
            continue
        why = _not_readable(path)
        if why is None:
            candidates[path] = None
        else:
            ignored.append(path.with_name(f"{path.name} ({why})"))
    stable, unsettled = wait_until_stable(list(candidates), stability or Stability.from_settings())
    found = []
    for path in stable:
        reader = candidates[path]
        kind: tuple[Kind, Literal["csv", "parquet", "export", "hl7"]] | None = (
            ("results", "export") if reader else file_kind(path.name)
        )
        assert kind is not None
        try:
            hashed = hash_unchanged(path)
        except FileNotFoundError:  # moved away meanwhile: not ours to read
            continue
        if hashed is None:  # written to while it was hashed: not settled after all
            unsettled.append(path)
            continue
        sha, sig = hashed
        found.append(InboxFile(path, kind[0], kind[1], sha, sig[1], sig, path.is_symlink(), reader))
    return found, ignored, sorted(unsettled)


def read_raw(file: InboxFile) -> pl.DataFrame:
    """The whole file as text columns plus ``row_number`` (see :func:`read_raw_blocks`)."""
    return pl.concat(list(read_raw_blocks(file)))


def read_raw_blocks(file: InboxFile, block_bytes: int | None = None) -> Iterator[pl.DataFrame]:
    """Read a file as text columns plus ``row_number`` (1 = first data row), a block of
    rows at a time (at least one block, empty for a file with only a header).

    Contract columns missing from an optional position are added empty; a missing required
    column, an empty file, or content that is not CSV/Parquet raises UnreadableFile (from
    the block where it is found: a caller keeps nothing of a file that raises).
    Columns beyond the contract are not read, but for the optional well columns of a
    results file (``WELL_COLUMNS``). A block is ``block_bytes`` of a CSV file
    (default: the ``block_bytes`` setting) or ``parquet_block_rows`` rows of a Parquet file
    (the setting): memory does not grow with the file.
    """
    current = settings.current()
    blocks = _text_blocks(file, block_bytes or current.block_bytes, current.parquet_block_rows)
    first_row = 1
    for frame, ascii_edges in blocks:
        frame = _contract_columns(frame, file, ascii_edges)
        ragged = [EXTRA_FIELDS] if EXTRA_FIELDS in frame.columns else []
        wells = [c for c in WELL_COLUMNS if file.kind == "results" and c in frame.columns]
        yield frame.select(
            pl.int_range(first_row, first_row + pl.len(), dtype=pl.Int64).alias("row_number"),
            *COLUMNS[file.kind],
            *[pl.col(c).cast(pl.String).str.strip_chars().replace("", None) for c in wells],
            *ragged,
        )
        first_row += frame.height


#: column of a block with rows longer than the header: their fields beyond it (else null)
EXTRA_FIELDS = "__extra_fields"
EXTRA_FIELDS_REASON = (
    "more fields than the header (a field too many, or a comma in a value without quotes)"
)


def hold_extra_fields(raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The rows to validate, and quarantine entries (``row_number, column_name, value,
    reason``) for the rows with more fields than the header, or None when there are none.
    Such a row cannot be trusted column by column (a comma in a name shifts every field
    after it), so the row is held whole; the other rows of its file go on."""
    if EXTRA_FIELDS not in raw.columns:
        return raw, None
    extra = pl.col(EXTRA_FIELDS)
    held = raw.filter(extra.is_not_null()).select(
        "row_number",
        column_name=pl.lit("(row)"),
        value=extra,
        reason=pl.lit(EXTRA_FIELDS_REASON),
    )
    return raw.filter(extra.is_null()).drop(EXTRA_FIELDS), held


def _text_blocks(
    file: InboxFile, block_bytes: int, parquet_rows: int
) -> Iterator[tuple[pl.DataFrame, bool]]:
    """The file's blocks as text frames, each with whether one of its texts may begin or
    end with ASCII white space (see :func:`_contract_columns`)."""
    try:
        if file.fmt == "csv":
            yield from _csv_blocks(file.path, block_bytes)
        else:
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(file.path)
            if parquet.metadata.num_rows == 0:
                empty = pl.from_arrow(parquet.schema_arrow.empty_table())
                assert isinstance(empty, pl.DataFrame)
                yield empty.with_columns(pl.all().cast(pl.String)), True
            for batch in parquet.iter_batches(batch_size=parquet_rows):
                frame = pl.from_arrow(batch)
                assert isinstance(frame, pl.DataFrame)
                yield frame.with_columns(pl.all().cast(pl.String)), True
    except UnreadableFile:
        raise
    except Exception as exc:  # polars and pyarrow raise several error types for garbage
        # the machine's fault, not the file's (memory short; an operating-system error,
        # which carries its errno: a file gone, a disk failing): the step fails and is
        # retried, the file is not quarantined. pyarrow reports some garbage as a bare
        # OSError ("Couldn't deserialize thrift"), without an errno
        if isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno is not None):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnreadableFile(f"cannot be read as {file.fmt.upper()}: {first}") from exc


def _last_row_end(data: bytes, inside_quotes: bool = False) -> int:
    """Index just past the last line break of ``data`` that is not inside a quoted field,
    or -1. ``inside_quotes``: ``data`` starts inside a quoted field (an odd number of
    quote characters came before it)."""
    if data.find(b'"') < 0:  # the usual block: no quotes at all, one scan from the end
        return -1 if inside_quotes else data.rfind(b"\n") + 1 or -1
    at = len(data)
    while (at := data.rfind(b"\n", 0, at)) >= 0:
        if (data.count(b'"', 0, at) + inside_quotes) % 2 == 0:
            return at + 1
    return -1


def _first_row_end(data: bytes) -> int:
    """Index just past the first line break not inside a quoted field, or -1."""
    at = -1
    while (at := data.find(b"\n", at + 1)) >= 0:
        if data.count(b'"', 0, at) % 2 == 0:
            return at + 1
    return -1


def _utf8(data: bytes, offset: int) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not UTF-8 text (byte {offset + exc.start})") from exc


_NOT_BLANK = re.compile(rb"\S")
#: the bytes that can put ASCII white space at the edge of a CSV field: the white space
#: polars strips (as Rust's ``str::trim``), but the line feed that ends a row, and the
#: quote (a quoted field may hold a line feed or begin with one)
_EDGE_BYTES = (b" ", b"\t", b"\r", b"\x0b", b"\x0c", b'"')


def _ascii_edges(block: bytes, start: int) -> bool:
    """Whether a field of the rows from ``start`` on may begin or end with ASCII white
    space: one of the edge bytes is there (a scan of 64 MiB for each takes ~3 ms)."""
    return any(block.find(b, start) >= 0 for b in _EDGE_BYTES)


def _csv_blocks(path: Path, block_bytes: int) -> Iterator[tuple[pl.DataFrame, bool]]:
    """The CSV file in blocks of whole rows, each parsed with the header row. A block ends
    at a line break outside quotes (RFC 4180 doubles a quote inside a quoted field, so
    the parity of quote characters says whether a line break is inside one).

    Each block's bytes are copied once (header, the previous read's partial row and this
    read's whole rows joined), and their UTF-8 is checked by the parser: the byte at fault
    is looked for only when it fails. Copies and checks in Python hold the interpreter
    lock that the block being validated meanwhile needs (a third of a big file's read)."""
    with open(path, "rb") as fh:
        head = b""
        while (end := _first_row_end(head)) < 0 and (more := fh.read(block_bytes)):
            head += more
        if not head.strip():
            raise UnreadableFile("empty file (no header row)")
        end = len(head) if end < 0 else end
        header = head[:end]
        _utf8(header, 0)
        offset = end  # position in the file of carry[0]
        carry = b""  # the start of a row the previous read did not hold whole
        chunk = head[end:]
        if len(chunk) < block_bytes:  # the first block as big as the others
            chunk += fh.read(block_bytes)
        yielded = False
        while True:
            if chunk:
                cut = _last_row_end(chunk, carry.count(b'"') % 2 == 1)
                if cut < 0:  # not one row end in this read
                    carry += chunk
                    chunk = fh.read(block_bytes)
                    continue
                block = b"".join([header, carry, memoryview(chunk)[:cut]])
                rest = chunk[cut:]
            else:  # end of file: what is left is the last block
                block, rest = header + carry, b""
            if _NOT_BLANK.search(block, len(header)) or not yielded:
                try:
                    frame = pl.read_csv(block, infer_schema=False)
                except pl.exceptions.ComputeError as exc:
                    _utf8(block[len(header) :], offset)  # raises, naming the byte, if that
                    frame = _with_extra_fields(block, exc)
                yield frame, _ascii_edges(block, len(header))
                yielded = True
            if not chunk:
                return
            offset += len(block) - len(header)
            carry, chunk = rest, fh.read(block_bytes)


def _with_extra_fields(block: bytes, error: Exception) -> pl.DataFrame:
    """A block in which some rows have more fields than the header: parsed with those
    rows cut to the header's width, their extra fields in :data:`EXTRA_FIELDS` (the rows
    are held, see :func:`hold_extra_fields`). Any other parse error is raised as it was.

    The slow path of a broken file only: Python's csv module finds the long rows (it reads
    quotes as polars does); when its rows do not line up with polars' the error stands."""
    if "more fields" not in str(error):
        raise error
    import csv
    import io

    records = list(csv.reader(io.StringIO(block.decode("utf-8"), newline="")))
    width = len(records[0])
    extras = [",".join(r[width:]) if len(r) > width else None for r in records[1:]]
    frame = pl.read_csv(block, infer_schema=False, truncate_ragged_lines=True)
    if frame.height != len(extras):
        raise error
    return frame.with_columns(pl.Series(EXTRA_FIELDS, extras, dtype=pl.String))


def _clean_header(name: str) -> str:
    return name.strip().lstrip("\ufeff").strip().lower()


def _contract_columns(
    frame: pl.DataFrame, file: InboxFile, ascii_edges: bool = True
) -> pl.DataFrame:
    """The contract's columns, trimmed, blanks as missing; raises when a required one is
    missing. ``ascii_edges``: a text may begin or end with ASCII white space (false only
    when the block's bytes say none can)."""
    frame = frame.rename({c: _clean_header(c) for c in frame.columns})
    spec = COLUMNS[file.kind]
    missing = [c for c, required in spec.items() if required and c not in frame.columns]
    if missing:
        raise UnreadableFile(
            f"not a {file.kind} file: required column(s) missing: {', '.join(missing)} "
            f"(found: {', '.join(frame.columns) or 'none'})"
        )
    frame = frame.with_columns(
        [pl.lit(None, dtype=pl.String).alias(c) for c in spec if c not in frame.columns]
    )
    # blank cells are missing values; surrounding spaces are noise. A stripped copy of
    # every text costs a tenth of a big file's staging, so without ASCII white space at
    # an edge only the columns with a non-ASCII character are stripped: Unicode white
    # space (a no-break space...) is never ASCII
    trim = set(spec)
    if not ascii_edges:
        non_ascii = frame.select(
            [(pl.col(c).str.len_bytes() != pl.col(c).str.len_chars()).any() for c in spec]
        ).row(0)
        trim = {c for c, found in zip(spec, non_ascii, strict=True) if found}
    return frame.with_columns(
        [(pl.col(c).str.strip_chars() if c in trim else pl.col(c)).replace("", None) for c in spec]
    )
