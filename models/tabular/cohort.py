"""The training cohort: CDW feature rows, outcomes from the CDW, and the ground truth beside them.

Linking the synthetic cohort's truth (keyed by MRN) to CDW persons (pseudonymous) needs the hub's
key, as inference does: the MRN finds the facade's Patient (identifier `urn:cdss:mrn`, the one
every source is linked by), the key turns its id into the CDW `person_id` and shifts the
cohort's index date into that person's CDW frame. The CDW itself never learns the MRN.

The outcome is read from the CDW, as it would be for real data: a lung-cancer condition starting
in (index, index + 365 days]. The truth file's own `cancer` flag is only compared with it (a
disagreement means the data path lost something, and is reported).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import orjson
from numpy.typing import NDArray
from sqlalchemy import Connection, and_, create_engine, select

from adapters.base import MRN_SYSTEM
from cdw.etl import cdw_engine
from cdw.features import CONDITIONS, FeatureRow
from cdw.features_sql import features_from_cdw
from cdw.pseudonym import Pseudonymizer
from cdw.schema import condition_occurrence
from fhir_facade.store.tables import resources
from simulators.cohort.truth import read_truth

log = logging.getLogger(__name__)
HORIZON_DAYS = 365
Progress = Callable[[int, int], None]


class CohortError(RuntimeError):
    """The cohort cannot be assembled (no truth file, no linked patients, ...)."""


@dataclass(frozen=True, slots=True)
class Member:
    mrn: str
    patient_id: str
    person_id: int
    index_date: date  # CDW frame
    truth: dict[str, str]


@dataclass(frozen=True)
class TrainingSet:
    rows: list[FeatureRow]
    labels: NDArray[np.int_]
    members: list[Member]
    unlinked: int  # truth rows without a facade patient
    label_disagreements: int  # CDW outcome != truth's cancer flag
    source: str = "cdw: features_sql over the CDW, outcome from condition_occurrence"

    @property
    def person_ids(self) -> list[int]:
        return [m.person_id for m in self.members]


def facade_patients_by_mrn(facade_url: str) -> dict[str, str]:
    """MRN -> facade Patient id, from the current (not deleted) Patient resources."""
    engine = create_engine(facade_url)
    r = resources.c
    out: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            query = select(r.res_id, r.content).where(
                and_(r.res_type == "Patient", r.deleted.is_(False))
            )
            for res_id, content in conn.execute(query):
                for ident in orjson.loads(content).get("identifier") or ():
                    if ident.get("system") == MRN_SYSTEM and ident.get("value"):
                        out[str(ident["value"])] = str(res_id)
    finally:
        engine.dispose()
    return out


def link(
    truth: Sequence[dict[str, str]], by_mrn: dict[str, str], pz: Pseudonymizer
) -> list[Member]:
    members = []
    for row in truth:
        patient = by_mrn.get(row["mrn"])
        if patient is None:
            continue
        index = pz.shift_date(date.fromisoformat(row["index_date"]), patient)
        members.append(Member(row["mrn"], patient, pz.person_id(patient), index, row))
    return members


def outcome(conn: Connection, member: Member) -> int:
    """1 when the CDW records lung cancer starting within the horizon after the index date."""
    c = condition_occurrence.c
    found = conn.execute(
        select(c.condition_occurrence_id)
        .where(
            c.person_id == member.person_id,
            c.condition_concept_id.in_(CONDITIONS["lung_cancer"]),
            c.condition_start_date > member.index_date,
            c.condition_start_date <= member.index_date + timedelta(days=HORIZON_DAYS),
        )
        .limit(1)
    ).first()
    return int(found is not None)


def build(
    facade_url: str,
    cdw_url: str,
    truth_path: Path,
    pz: Pseudonymizer,
    progress: Progress | None = None,
) -> TrainingSet:
    """Feature rows and outcomes of every truth patient found in the facade and the CDW."""
    if not truth_path.is_file():
        raise CohortError(
            f"no ground truth at {truth_path}: seed a cohort first (`cdss seed`, or `cdss demo`)"
        )
    truth = read_truth(truth_path)
    members = link(truth, facade_patients_by_mrn(facade_url), pz)
    if not members:
        raise CohortError(
            f"none of the {len(truth)} patients of {truth_path} is in the facade "
            f"({facade_url}): run `cdss sync` then `cdss etl` first"
        )
    engine = cdw_engine(cdw_url)
    rows, labels, disagree = [], [], 0
    try:
        with engine.connect() as conn:
            for i, member in enumerate(members):
                rows.append(features_from_cdw(conn, member.person_id, member.index_date))
                y = outcome(conn, member)
                disagree += int(y != int(member.truth["cancer"]))
                labels.append(y)
                if progress is not None and (i % 100 == 0 or i + 1 == len(members)):
                    progress(i + 1, len(members))
    finally:
        engine.dispose()
    if disagree:
        log.warning("%d patients' CDW outcome differs from the ground truth", disagree)
    return TrainingSet(
        rows, np.asarray(labels, dtype=np.int_), members, len(truth) - len(members), disagree
    )


SYNTHETIC_INDEX = date(2024, 6, 30)  # fixed, so equal seeds give equal artifacts on any day


def synthetic(
    n: int, seed: int, pz: Pseudonymizer, progress: Progress | None = None
) -> TrainingSet:
    """A cohort drawn from the generator and built as FHIR records directly (no sources, no
    CDW; see `models.tabular.synthetic`), featurised by the inference path, which the feature
    tests prove equal to the CDW path. The outcome is the generator's (diagnosis within 12
    months by construction). For experiments and the default model; real data use `build`."""
    from cdw.features_fhir import features_from_fhir
    from models.tabular.synthetic import patient_record
    from simulators.cohort.model import CohortGenerator
    from simulators.cohort.truth import truth_row

    gen = CohortGenerator(seed, SYNTHETIC_INDEX)
    rows, members, labels = [], [], []
    for i in range(n):
        p = gen.patient(i + 1)
        pid = f"synthetic-{seed}-{i + 1}"
        rows.append(features_from_fhir(patient_record(p, pid), SYNTHETIC_INDEX, pz))
        truth = {k: str(v) for k, v in truth_row(p, seed, SYNTHETIC_INDEX).items()}
        members.append(
            Member(p.mrn, pid, pz.person_id(pid), pz.shift_date(SYNTHETIC_INDEX, pid), truth)
        )
        labels.append(int(p.cancer))
        if progress is not None and (i % 100 == 0 or i + 1 == n):
            progress(i + 1, n)
    return TrainingSet(
        rows, np.asarray(labels, dtype=np.int_), members, 0, 0,
        f"synthetic: {n} generator patients (seed {seed}) as FHIR records, features_from_fhir",
    )  # fmt: skip
