"""Constrained value types shared by the events: identifiers and codes of the domain."""

from typing import Annotated

from pydantic import Field, StringConstraints

Nik = Annotated[str, StringConstraints(pattern=r"^\d{16}$"), Field(description="NIK: 16-digit national id number.")]
KkNumber = Annotated[str, StringConstraints(pattern=r"^\d{16}$"), Field(description="No. KK: 16-digit family card number.")]
VillageCode = Annotated[
    str,
    StringConstraints(pattern=r"^\d{10}$"),
    Field(description="Kemendagri village code PP.KK.SS.DDDD without dots."),
]
ProgrammeCode = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,31}$"),
    Field(description="Programme code, e.g. jamsosratu or jscm."),
]
