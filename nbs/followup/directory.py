"""The directory of submitters and doctors a coordinator calls and writes to: the
laboratory's own file (``directory.yaml``: each submitter code's maternity, each
condition's specialist centre, the laboratory itself), and the ordering provider an HL7
order named for the card, when there is one."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from nbs.store import contacts as contact_store
from nbs.yamlfile import load_yaml

DEFAULT_DIRECTORY = Path(__file__).with_name("directory.yaml")


class Entry(BaseModel):
    """One addressee: name, unit, telephone, e-mail (any may be missing)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    unit: str | None = None
    telephone: str | None = None
    email: str | None = None


class Directory(BaseModel):
    """The laboratory, the submitters by code and the specialists by condition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    laboratory: Entry
    submitters: dict[str, Entry] = {}
    specialists: dict[str, Entry] = {}

    def submitter(self, code: str | None) -> Entry | None:
        """The submitter's entry (None: no code, or not in the directory)."""
        return self.submitters.get(code) if code else None

    def specialist(self, condition: str | None) -> Entry | None:
        """The specialist centre for a condition, else the default one."""
        return self.specialists.get(condition or "") or self.specialists.get("default")


def load_directory(path: Path | None = None) -> Directory:
    """Read the directory (the packaged file by default)."""
    return Directory.model_validate(load_yaml(path or DEFAULT_DIRECTORY))


def recall_addressees(
    db: Path, directory: Directory, recall: dict[str, object], submitter: str | None
) -> list[tuple[str, Entry]]:
    """Whom a coordinator may reach about a recall, each with its role: the submitting
    maternity, the ordering provider of the card's HL7 order, the specialist centre."""
    found: list[tuple[str, Entry]] = []
    maternity = directory.submitter(submitter)
    if maternity is not None:
        found.append(("maternity", maternity))
    elif submitter:
        found.append(("maternity", Entry(name=f"{submitter} (not in the directory)")))
    provider = contact_store.card_provider(db, str(recall["specimen_id"]))
    if provider is not None:
        name = str(provider["name"] or "ordering provider")
        phone = provider["telephone"]
        found.append(
            ("ordering provider (HL7 order)", Entry(name=name, telephone=str(phone or "") or None))
        )
    if recall.get("action") == "referral":
        specialist = directory.specialist(str(recall.get("condition") or ""))
        if specialist is not None:
            found.append(("specialist", specialist))
    return found
