"""No direct identifier of the source survives in any CDW column, nor does the key."""

from __future__ import annotations

from datetime import date, datetime

from cdw_cohort import KEY, patient_resources, write_cohort
from sqlalchemy import select

from cdw.etl import Etl
from cdw.pseudonym import Pseudonymizer
from cdw.schema import metadata


def _identifiers(i: int) -> set[str]:
    patient = patient_resources(i)[0]
    return {
        f"Lovelace{i}", f"Ada{i}", f"MRN-90{i:03d}", f"+44 20 7946 0{i:03d}", f"{i} Crona Wall",
        "Boston", "02215", patient["birthDate"], f"pat-{i}", f"SER-9{i:03d}",
        f"1.2.826.0.1.{i}", "Grace Hopper", "Crona", "phone",
    }  # fmt: skip


def test_cdw_keeps_no_direct_identifier(database_url: str) -> None:
    write_cohort(database_url, 3)
    pz = Pseudonymizer(KEY)
    etl = Etl(database_url, database_url, pz)
    try:
        assert not etl.run().errors
        secrets = set().union(*(_identifiers(i) for i in range(3)))
        seen_dates: set[date] = set()
        with etl.cdw.connect() as conn:
            for table in metadata.tables.values():
                if table.name in {"concept", "concept_relationship"}:
                    continue
                for row in conn.execute(select(table)):
                    for column, value in row._mapping.items():
                        text = str(value)
                        assert KEY.decode() not in text, (table.name, column)
                        leaked = [s for s in secrets if s in text]
                        assert not leaked, (table.name, column, leaked)
                        if isinstance(value, datetime):
                            seen_dates.add(value.date())
                        elif isinstance(value, date):
                            seen_dates.add(value)
                    if table.name == "person":
                        assert row.month_of_birth is None and row.day_of_birth is None
                        assert row.birth_datetime is None
        real = {date(1950 + i, 7, 3) for i in range(3)}
        real |= {date(2024, 3, 1), date(2024, 2, 1), date(2019, 5, 1), date(2022, 1, 10)}
        assert not (seen_dates & real), "unshifted dates in the CDW"
    finally:
        etl.close()
