"""A village name twelve villages share: more than one numbered list shows (issue 16)."""
from __future__ import annotations

import io
from collections.abc import Mapping

from bot.db import Database
from bot.registry.importer import RECIPIENT_COLUMNS, import_recipients

VILLAGE = "Sukamaju"
# With the demo's Sukamaju of Kec. Baleendah (Kab. Bandung) and Kec. Cibinong (Kab. Bogor):
# twelve in all, nine of them in Kabupaten Bogor and two in Kota Bogor.
DISTRICTS = {
    "Kabupaten Bogor": (
        "Citeureup", "Bojonggede", "Cileungsi", "Gunung Putri", "Sukaraja", "Ciawi", "Cisarua", "Megamendung",
    ),
    "Kota Bogor": ("Bogor Barat", "Bogor Utara"),
}
# Who lives in the village of Kec. Cisarua.
RESIDENT = "Asep Saepudin"


def add_sukamaju_villages(db: Database) -> None:
    """One recipient in each of ten more villages named Sukamaju."""
    add_villages(db, VILLAGE, DISTRICTS)


def add_villages(db: Database, village: str, districts_of: Mapping[str, tuple[str, ...]]) -> None:
    """One recipient in a village named `village` in each of these districts, by regency
    (their NIKs are the same for every name: one call per database)."""
    rows = []
    serial = 0
    for regency, districts in districts_of.items():
        for district in districts:
            serial += 1
            name = RESIDENT if district == "Cisarua" else f"Warga {district}"
            rows.append(f"320101120888{serial:04d},{name},1988-08-12,,32,{regency},{district},{village},,false")
    report = import_recipients(db, io.StringIO(",".join(RECIPIENT_COLUMNS) + "\n" + "\n".join(rows) + "\n"))
    assert report.errors == [], report.errors
