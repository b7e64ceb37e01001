"""Instrument exports in the inbox: one reader interface, the built-in readers driven by
the instrument profiles, and readers from other packages as plug-ins.

A reader recognises a file by its first bytes (any file name) and turns the whole file
into canonical result rows (text columns, ``row_number`` 1..n in the export's well order);
from there the file is validated, held or kept like a results file. A vendor adapter can
be a separate package: it declares an entry point in the group ``nbs.readers`` whose
object has ``name``, ``recognise(head: str) -> bool`` and ``read(text: str, file_name:
str) -> polars.DataFrame`` (the columns of :data:`nbs.intake.quantstudio.CANONICAL`).
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol

import polars as pl

from nbs.intake import plate_table, quantstudio
from nbs.intake.discover import InboxFile, UnreadableFile
from nbs.intake.profiles import Profile
from nbs.intake.quantstudio_excel import ZIP_MAGIC, workbook_as_text

#: the entry-point group of reader plug-ins
GROUP = "nbs.readers"
#: bytes read to recognise a file
HEAD_BYTES = 4096


class ExportReader(Protocol):
    """Reads one kind of instrument export."""

    @property
    def name(self) -> str:
        """The reader's name (kept with the file it read)."""
        ...

    def recognise(self, head: str) -> bool:
        """Whether a file starting with ``head`` is this reader's."""
        ...

    def read(self, text: str, file_name: str) -> pl.DataFrame:
        """The file's canonical result rows (text columns)."""
        ...


@dataclass(frozen=True)
class ProfileReader:
    """A built-in reader with its instrument profile."""

    profile: Profile

    @property
    def name(self) -> str:
        return self.profile.name

    def recognise(self, head: str) -> bool:
        if self.profile.reader == "plate_table":
            return plate_table.recognise(head, self.profile)
        # QuantStudio exports share a layout: the profile whose targets the file names
        return quantstudio.recognise(head) and any(
            f"\t{t}\t" in head or f'"{t}"' in head or f",{t}," in head for t in self.profile.targets
        )

    def read(self, text: str, file_name: str) -> pl.DataFrame:
        if self.profile.reader == "plate_table":
            return plate_table.read(text, self.profile, file_name)
        return quantstudio.to_results(quantstudio.parse_text(text), self.profile, file_name)


def readers(profiles: Iterable[Profile]) -> list[ExportReader]:
    """The built-in readers of ``profiles``, then every installed plug-in reader."""
    found: list[ExportReader] = [ProfileReader(p) for p in profiles]
    for entry in entry_points(group=GROUP):
        loaded = entry.load()
        found.append(loaded() if isinstance(loaded, type) else loaded)
    return found


def decode(data: bytes) -> str:
    """An export's text: an Excel workbook's Results sheet in the QuantStudio text layout,
    else UTF-8 (with or without a byte-order mark), UTF-16 with its mark, or else
    Windows-1252 (instrument PCs write it; every byte decodes)."""
    if data.startswith(ZIP_MAGIC):
        return workbook_as_text(data) or ""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def recogniser(found: list[ExportReader]) -> Callable[[Path], str | None]:
    """For :func:`nbs.intake.discover.discover`: the name of the reader of a file, or None."""

    def recognise(path: Path) -> str | None:
        try:
            with open(path, "rb") as f:
                data = f.read(HEAD_BYTES)
                if data.startswith(ZIP_MAGIC):  # a workbook is read whole (it is small)
                    data += f.read()
            head = decode(data)[:HEAD_BYTES]
        except OSError:
            return None
        return next((r.name for r in found if r.recognise(head)), None)

    return recognise


def read_export_blocks(file: InboxFile, found: list[ExportReader]) -> Iterator[pl.DataFrame]:
    """The export as one block of canonical text columns plus ``row_number``; an export
    its reader cannot read raises :class:`UnreadableFile` with the reader's reason."""
    reader = next((r for r in found if r.name == file.reader), None)
    if reader is None:
        raise UnreadableFile(f"no reader {file.reader!r} is installed any more")
    try:
        frame = reader.read(decode(file.path.read_bytes()), file.name)
    except (quantstudio.ExportError, ValueError, KeyError) as exc:
        raise UnreadableFile(f"{reader.name} export: {exc}") from exc
    frame = frame.with_columns(
        [
            pl.lit(None, dtype=pl.String).alias(c)
            for c in quantstudio.CANONICAL
            if c not in frame.columns
        ]
    )
    # a plug-in reader may leave its wells unnumbered, like the built-in ones do
    yield quantstudio.number_wells(
        frame.select(
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("row_number"),
            *[pl.col(c).cast(pl.String) for c in quantstudio.CANONICAL],
        )
    )
