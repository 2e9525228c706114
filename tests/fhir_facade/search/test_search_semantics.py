"""FHIR R4 search semantics (3.1.1) through the HTTP API, per parameter type, with the boundary
cases: token, string, date (every prefix, each precision, Periods, _lastUpdated), reference,
quantity, :missing, OR/AND, _id, _sort, _count/_summary/_total, _include/_revinclude, POST
_search, and keyset paging that stays correct while data changes.

Resources are created with readable ids (`PUT`), so each expectation below is written out by
hand from the specification's rules, not computed by code like the server's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi.testclient import TestClient

from fhir_facade.search import cursor as cursors
from tests.fhir_facade import factories as f

BASE = "http://testserver/fhir"
OTHER_IDS = "http://other.example/ids"
OTHER_CODES = "http://other.example/codes"
Case = tuple[str, set[str] | list[str]]


def _seed(client: TestClient, resources: dict[str, dict[str, Any]]) -> None:
    """PUT every resource under its key as id, in one transaction, in the dict's order."""
    entries = [
        {
            "resource": {**res, "id": rid},
            "request": {"method": "PUT", "url": f"{res['resourceType']}/{rid}"},
        }
        for rid, res in resources.items()
    ]
    f.transaction(client, entries)


def _params(query: str) -> list[tuple[str, str]]:
    """`a=1&b=x|y` as written by hand: split on & and the first =, no percent-decoding."""
    return [(k, v) for k, _, v in (part.partition("=") for part in query.split("&"))]


def _run(client: TestClient, rtype: str, query: str) -> dict[str, Any]:
    return f.search(client, rtype, [*_params(query), ("_count", "100")])


def _check(client: TestClient, rtype: str, cases: list[Case]) -> None:
    """Run every query; report all the mismatches at once. A set expects those ids in any
    order, a list exactly that order."""
    wrong = []
    for query, expected in cases:
        got = f.ids(_run(client, rtype, query))
        if (sorted(got) if isinstance(expected, set) else got) != (
            sorted(expected) if isinstance(expected, set) else expected
        ):
            wrong.append(f"{rtype}?{query}: expected {expected}, got {got}")
    assert wrong == [], "\n".join(wrong)


# -- token ---------------------------------------------------------------------------------------


def test_token_search(client: TestClient) -> None:
    p = f.patient
    _seed(
        client,
        {
            "tp1": p(identifier=[f.identifier("111")], gender="female", active=True),
            "tp2": p(identifier=[f.identifier("111", OTHER_IDS)], gender="male", active=False),
            "tp3": p(identifier=[f.identifier("111", None)], gender="female"),
            "tp4": p(
                identifier=[f.identifier("222"), f.identifier("333", OTHER_IDS)],
                gender="other",
                active=True,
            ),
            "tp5": p(active=False),
            "to1": f.observation(code="2345-7"),
            "to2": f.observation(code="2345-7", system=OTHER_CODES),
            "to3": f.observation(code="2345-7", system=None),
            "to4": f.observation(code="718-7"),
            "to5": {
                **f.observation(code="718-7"),
                "code": {
                    "coding": [
                        {"system": f.LOINC, "code": "718-7"},
                        {"system": OTHER_CODES, "code": "XYZ"},
                    ]
                },
            },
        },
    )
    mrn = f.MRN
    _check(
        client,
        "Patient",
        [
            ("identifier=111", {"tp1", "tp2", "tp3"}),
            (f"identifier={mrn}|111", {"tp1"}),
            ("identifier=|111", {"tp3"}),
            (f"identifier={mrn}|", {"tp1", "tp4"}),
            (f"identifier={mrn}|111,{OTHER_IDS}|111", {"tp1", "tp2"}),
            (f"identifier={mrn}|222&identifier={OTHER_IDS}|333", {"tp4"}),
            (f"identifier={mrn}|111&identifier={OTHER_IDS}|111", set()),
            (f"identifier:not={mrn}|111", {"tp2", "tp3", "tp4", "tp5"}),
            ("identifier:missing=true", {"tp5"}),
            ("identifier:missing=false", {"tp1", "tp2", "tp3", "tp4"}),
            ("identifier=11", set()),  # tokens match whole codes
            ("gender=female", {"tp1", "tp3"}),
            ("gender=female,male", {"tp1", "tp2", "tp3"}),
            ("gender:not=female", {"tp2", "tp4", "tp5"}),
            ("active=true", {"tp1", "tp4"}),
            ("active=false", {"tp2", "tp5"}),
            ("active:not=true", {"tp2", "tp3", "tp5"}),
            ("active:missing=true", {"tp3"}),
            ("_id=tp1,tp3", {"tp1", "tp3"}),
            ("_id=tp1&_id=tp3", set()),
            ("_id=nope", set()),
            ("_id:not=tp1", {"tp2", "tp3", "tp4", "tp5"}),
        ],
    )
    _check(
        client,
        "Observation",
        [
            ("code=2345-7", {"to1", "to2", "to3"}),
            (f"code={f.LOINC}|2345-7", {"to1"}),
            ("code=|2345-7", {"to3"}),
            (f"code={f.LOINC}|", {"to1", "to4", "to5"}),
            (f"code:not={f.LOINC}|2345-7", {"to2", "to3", "to4", "to5"}),
            (f"code={OTHER_CODES}|XYZ", {"to5"}),
            ("code=XYZ,718-7", {"to4", "to5"}),
            (f"code={f.LOINC}|718-7&code={OTHER_CODES}|XYZ", {"to5"}),
        ],
    )


# -- string --------------------------------------------------------------------------------------


def test_string_search(client: TestClient) -> None:
    p = f.patient
    _seed(
        client,
        {
            "sp1": p("Smith", ["John", "Paul"], address=[{"city": "Amsterdam"}]),
            "sp2": p("Smithson", ["Ève"], address=[{"city": "Rotterdam"}]),
            "sp3": p("Goldsmith", ["Anna"], address=[{"city": "Den Haag"}]),
            "sp4": {
                "resourceType": "Patient",
                "name": [{"family": "Müller", "given": ["Zoë"], "text": "Dr. Zoë Müller"}],
            },
            "sp5": p(None, ["Solo"]),
        },
    )
    _check(
        client,
        "Patient",
        [
            ("family=smith", {"sp1", "sp2"}),  # starts with, any case
            ("family=SMI", {"sp1", "sp2"}),
            ("family=smiths", {"sp2"}),
            ("family=mith", set()),
            ("family:exact=Smith", {"sp1"}),
            ("family:exact=smith", set()),
            ("family:exact=Smit", set()),
            ("family:contains=smith", {"sp1", "sp2", "sp3"}),
            ("family:contains=MIT", {"sp1", "sp2", "sp3"}),
            ("family:contains=ller", {"sp4"}),
            ("given=eve", {"sp2"}),  # accents are ignored
            ("given=ÈVE", {"sp2"}),
            ("family=muller", {"sp4"}),
            ("family=MÜLLER", {"sp4"}),
            ("family:exact=Muller", set()),
            ("family:exact=Müller", {"sp4"}),
            ("given=a", {"sp3"}),
            ("name=paul", {"sp1"}),  # any part of the HumanName
            ("name=smith", {"sp1", "sp2"}),
            ("name=zoe", {"sp4"}),
            ("name=dr", {"sp4"}),
            ("name=solo", {"sp5"}),
            ("address-city=amster", {"sp1"}),
            ("address-city=den haag", {"sp3"}),
            ("address-city=haag", set()),
            ("address-city:contains=haag", {"sp3"}),
            ("address-city:exact=Den Haag", {"sp3"}),
            ("address=rotter", {"sp2"}),
            ("family=smith,gold", {"sp1", "sp2", "sp3"}),
            ("family=smith&given=john", {"sp1"}),
            ("given=john&given=paul", {"sp1"}),
            ("given=john&given=eve", set()),
            ("family:missing=true", {"sp5"}),
            ("family:missing=false", {"sp1", "sp2", "sp3", "sp4"}),
        ],
    )


# -- date ----------------------------------------------------------------------------------------


def test_date_prefixes_at_every_precision(client: TestClient) -> None:
    """birthDate values of day, month and year precision against searches of each precision;
    ranges meet exactly at the boundaries: bd4 ends where 2020 begins, bd2 where February does."""
    births = {
        "bd1": "2020-01-01",
        "bd2": "2020-01-31",
        "bd3": "2020-02-15",
        "bd4": "2019-12-31",
        "bd5": "2021",
        "bd6": "2020-03",
        "bd7": "1905-06-01",
        "bd8": "1950-06-01",
    }
    seeded = {rid: f.patient(birthDate=b) for rid, b in births.items()}
    _seed(client, {**seeded, "bd9": f.patient()})
    everyone = set(births)
    _check(
        client,
        "Patient",
        [
            # month
            ("birthdate=2020-01", {"bd1", "bd2"}),
            ("birthdate=eq2020-01", {"bd1", "bd2"}),
            ("birthdate=ne2020-01", everyone - {"bd1", "bd2"}),
            ("birthdate=gt2020-01", {"bd3", "bd5", "bd6"}),
            ("birthdate=lt2020-01", {"bd4", "bd7", "bd8"}),
            ("birthdate=ge2020-01", {"bd1", "bd2", "bd3", "bd5", "bd6"}),
            ("birthdate=le2020-01", {"bd1", "bd2", "bd4", "bd7", "bd8"}),
            ("birthdate=sa2020-01", {"bd3", "bd5", "bd6"}),
            ("birthdate=eb2020-01", {"bd4", "bd7", "bd8"}),
            # day
            ("birthdate=2020-01-01", {"bd1"}),
            ("birthdate=ne2020-01-01", everyone - {"bd1"}),
            ("birthdate=gt2020-01-01", {"bd2", "bd3", "bd5", "bd6"}),
            ("birthdate=lt2020-01-01", {"bd4", "bd7", "bd8"}),
            ("birthdate=ge2020-01-01", {"bd1", "bd2", "bd3", "bd5", "bd6"}),
            ("birthdate=le2020-01-01", {"bd1", "bd4", "bd7", "bd8"}),
            ("birthdate=sa2020-01-01", {"bd2", "bd3", "bd5", "bd6"}),
            ("birthdate=eb2020-01-01", {"bd4", "bd7", "bd8"}),
            ("birthdate=gt2020-01-31", {"bd3", "bd5", "bd6"}),  # bd2 ends at the boundary
            ("birthdate=sa2020-01-31", {"bd3", "bd5", "bd6"}),
            ("birthdate=eb2020-02-15", {"bd1", "bd2", "bd4", "bd7", "bd8"}),
            ("birthdate=lt2020-02-15", {"bd1", "bd2", "bd4", "bd7", "bd8"}),
            ("birthdate=le2020-02-15", {"bd1", "bd2", "bd3", "bd4", "bd7", "bd8"}),
            # year
            ("birthdate=2020", {"bd1", "bd2", "bd3", "bd6"}),
            ("birthdate=ne2020", {"bd4", "bd5", "bd7", "bd8"}),
            ("birthdate=gt2020", {"bd5"}),
            ("birthdate=lt2020", {"bd4", "bd7", "bd8"}),
            ("birthdate=ge2020", {"bd1", "bd2", "bd3", "bd5", "bd6"}),
            ("birthdate=le2020", everyone - {"bd5"}),
            ("birthdate=sa2020", {"bd5"}),
            ("birthdate=eb2020", {"bd4", "bd7", "bd8"}),
            # a year-precision value is not inside a day, but overlaps what lies around it
            ("birthdate=2021-06-01", set()),
            ("birthdate=ge2021-06-01", {"bd5"}),
            ("birthdate=sa2021-06-01", set()),
            # second precision
            ("birthdate=2020-01-01T12:00:00Z", set()),
            ("birthdate=lt2020-01-01T00:00:00Z", {"bd4", "bd7", "bd8"}),
            ("birthdate=gt2020-01-01T23:59:59Z", {"bd2", "bd3", "bd5", "bd6"}),
            ("birthdate=sa2020-01-01T23:59:59Z", {"bd2", "bd3", "bd5", "bd6"}),
            ("birthdate=eb2020-01-01T00:00:00Z", {"bd4", "bd7", "bd8"}),
            # approximately: far from now the tolerance is wide, but not 45 years wide
            ("birthdate=ap1905-06-01", {"bd7"}),
            ("birthdate=ap1950-06-01", {"bd8"}),
            # OR within a parameter, AND across repeats
            ("birthdate=2019-12-31,2021", {"bd4", "bd5"}),
            ("birthdate=ge2020-01-01&birthdate=lt2020-02", {"bd1", "bd2"}),
            ("birthdate:missing=true", {"bd9"}),
            ("birthdate:missing=false", everyone),
        ],
    )


def test_date_times_periods_and_last_updated(client: TestClient) -> None:
    obs = f.observation
    _seed(
        client,
        {
            "t1": obs(effectiveDateTime="2020-06-01T10:00:00Z"),
            "t2": obs(effectiveDateTime="2020-06-01T10:00:00+02:00"),  # 08:00Z
            "t3": obs(effectiveDateTime="2020-06-01T23:30:00-05:00"),  # 06-02T04:30Z
            "t4": obs(effectiveDateTime="2020-06-01T10:00:00.500Z"),
            "e1": f.encounter("Patient/x", "2020-06-01T08:00:00Z", "2020-06-01T12:00:00Z"),
            "e2": f.encounter("Patient/x", "2020-06-01T20:00:00Z"),  # still open
            "e3": f.encounter("Patient/x", "2020-05-30", "2020-06-02"),  # to the end of 06-02
            "e4": f.encounter("Patient/x", None, "2020-05-01"),
            "e5": f.encounter("Patient/x"),
        },
    )
    _check(
        client,
        "Observation",
        [
            ("date=2020-06-01", {"t1", "t2", "t4"}),
            ("date=2020-06-02", {"t3"}),
            ("date=ne2020-06-01", {"t3"}),
            ("date=2020-06-01T10:00:00Z", {"t1", "t4"}),
            ("date=2020-06-01T10:00Z", {"t1", "t4"}),
            ("date=2020-06-01T12:00:00+02:00", {"t1", "t4"}),
            ("date=2020-06-01T08:00:00Z", {"t2"}),
            ("date=2020-06-01T10:00:00.500Z", {"t4"}),
            ("date=gt2020-06-01T10:00:00Z", {"t3"}),
            ("date=ge2020-06-01T10:00:00Z", {"t1", "t3", "t4"}),
            ("date=lt2020-06-01T10:00:00Z", {"t2"}),
            ("date=le2020-06-01T10:00:00Z", {"t1", "t2", "t4"}),
            ("date=lt2020-06-01T10:00:00.500Z", {"t1", "t2"}),
            ("date=sa2020-06-01T10:00:00Z", {"t3"}),
            ("date=eb2020-06-01T10:00:00Z", {"t2"}),
        ],
    )
    _check(
        client,
        "Encounter",
        [
            ("date=2020-06-01", {"e1"}),
            ("date=2020-06", {"e1"}),
            ("date=2020", {"e1", "e3"}),
            ("date=ne2020-06-01", {"e2", "e3", "e4"}),
            ("date=ge2020-06-01", {"e1", "e2", "e3"}),
            ("date=gt2020-06-02", {"e2"}),  # e3 ends exactly where the search value ends
            ("date=lt2020-06-01", {"e3", "e4"}),
            ("date=le2020-05-01", {"e4"}),
            ("date=sa2020-05-31", {"e1", "e2"}),
            ("date=eb2020-05-30", {"e4"}),
            ("date=eb2020-05-02", {"e4"}),
            ("date=eb2020-05-01", set()),
            ("date=gt2030-01-01", {"e2"}),
            ("date=2020-06-01T20:00:00Z", set()),
            ("date:missing=true", {"e5"}),
        ],
    )
    _last_updated(client)


def _last_updated(client: TestClient) -> None:
    first = f.put(client, {**f.patient("First"), "id": "lu1"})
    second = f.put(client, {**f.patient("Second"), "id": "lu2"})
    u1, u2 = first["meta"]["lastUpdated"], second["meta"]["lastUpdated"]
    assert u1 < u2
    _check(
        client,
        "Patient",
        [
            (f"_lastUpdated={u1}", {"lu1"}),
            (f"_lastUpdated=ne{u1}", {"lu2"}),
            (f"_lastUpdated=ge{u2}", {"lu2"}),
            (f"_lastUpdated=gt{u1}", {"lu2"}),
            (f"_lastUpdated=lt{u2}", {"lu1"}),
            (f"_lastUpdated=le{u1}", {"lu1"}),
            (f"_lastUpdated=sa{u1}", {"lu2"}),
            (f"_lastUpdated=eb{u2}", {"lu1"}),
            (f"_lastUpdated=ge{u1}&_lastUpdated=le{u1}", {"lu1"}),
            (f"_lastUpdated=ge{u1[:10]}", {"lu1", "lu2"}),
            ("_lastUpdated=gt2000-01-01", {"lu1", "lu2"}),
            ("_lastUpdated=lt2000-01-01", set()),
            ("_sort=_lastUpdated", ["lu1", "lu2"]),
        ],
    )
    f.put(client, {**f.patient("First again"), "id": "lu1"}, status=200)
    _check(client, "Patient", [(f"_lastUpdated=ge{u2}", {"lu1", "lu2"})])
    _check(client, "Patient", [("_sort=-_lastUpdated", ["lu1", "lu2"])])


# -- reference -----------------------------------------------------------------------------------


def test_reference_search(client: TestClient) -> None:
    _seed(
        client,
        {
            "ra": f.patient("A"),
            "rb": f.patient("B"),
            "oa1": f.observation("Patient/ra"),
            "oa2": f.observation(f"{BASE}/Patient/ra"),  # absolute, on this server
            "oa3": f.observation("Patient/ra/_history/1"),  # version-specific
            "ob1": f.observation("Patient/rb"),
            "og": f.observation("Group/ra"),  # the same id on another type
            "on": f.observation(),
        },
    )
    on_ra = {"oa1", "oa2", "oa3"}
    _check(
        client,
        "Observation",
        [
            ("patient=ra", on_ra),
            ("patient=Patient/ra", on_ra),
            (f"patient={BASE}/Patient/ra", on_ra),
            ("subject=ra", on_ra | {"og"}),
            ("subject:Patient=ra", on_ra),
            ("subject=Patient/ra", on_ra),
            ("subject=Group/ra", {"og"}),
            ("subject:Group=ra", {"og"}),
            (f"subject={BASE}/Group/ra", {"og"}),
            ("patient=ra,rb", on_ra | {"ob1"}),
            ("patient=rb", {"ob1"}),
            ("patient=Patient/nope", set()),
            ("patient=ra&patient=rb", set()),
            ("subject:missing=true", {"on"}),
            ("patient:missing=true", {"on", "og"}),
            ("patient:missing=false", on_ra | {"ob1"}),
        ],
    )


def test_reference_to_another_server_is_not_a_local_reference(client: TestClient) -> None:
    _seed(
        client,
        {
            "ra": f.patient("A"),
            "local": f.observation("Patient/ra"),
            "foreign": f.observation("http://elsewhere.example/fhir/Patient/ra"),
        },
    )
    _check(
        client,
        "Observation",
        [
            ("subject=http://elsewhere.example/fhir/Patient/ra", {"foreign"}),
            ("patient=ra", {"local"}),
        ],
    )


# -- quantity ------------------------------------------------------------------------------------


def test_quantity_search(client: TestClient) -> None:
    q = f.quantity
    _seed(
        client,
        {
            "q1": f.observation(valueQuantity=q(5.4)),
            "q2": f.observation(valueQuantity=q(5.44)),
            "q3": f.observation(valueQuantity=q(5.46)),
            "q4": f.observation(valueQuantity=q(5.4, "mmol/L")),
            "q5": f.observation(valueQuantity=q(10)),
            "q6": f.observation(valueString="not measured"),
            "q7": f.observation(valueQuantity=q(5.4, system="http://other.example/units")),
        },
    )
    ucum = f.UCUM
    _check(
        client,
        "Observation",
        [
            # 5.4 has one decimal: it means [5.35, 5.45)
            ("value-quantity=5.4", {"q1", "q2", "q4", "q7"}),
            ("value-quantity=eq5.4", {"q1", "q2", "q4", "q7"}),
            ("value-quantity=5.40", {"q1", "q4", "q7"}),
            ("value-quantity=eq5.44", {"q2"}),
            ("value-quantity=ne5.4", {"q3", "q5"}),
            ("value-quantity=gt5.4", {"q2", "q3", "q5"}),
            ("value-quantity=ge5.44", {"q2", "q3", "q5"}),
            ("value-quantity=lt5.44", {"q1", "q4", "q7"}),
            ("value-quantity=le5.4", {"q1", "q4", "q7"}),
            ("value-quantity=ap5.4", {"q1", "q2", "q3", "q4", "q7"}),
            ("value-quantity=10", {"q5"}),
            ("value-quantity=1e1", {"q1", "q2", "q3", "q4", "q5", "q7"}),  # [5, 15)
            (f"value-quantity=5.4|{ucum}|mg/dL", {"q1", "q2"}),
            ("value-quantity=5.4||mg/dL", {"q1", "q2", "q7"}),
            (f"value-quantity=5.4|{ucum}|mmol/L", {"q4"}),
            (f"value-quantity=gt5|{ucum}|mg/dL", {"q1", "q2", "q3", "q5"}),
            ("value-quantity=5.4,10", {"q1", "q2", "q4", "q5", "q7"}),
            ("value-quantity=5.4&value-quantity=ge5.42", {"q2"}),
            ("value-quantity:missing=true", {"q6"}),
            ("value-quantity:missing=false", {"q1", "q2", "q3", "q4", "q5", "q7"}),
        ],
    )


# -- _sort, _count, _summary, _total ---------------------------------------------------------------


def test_sort(client: TestClient) -> None:
    p, obs = f.patient, f.observation
    _seed(
        client,
        {  # created in an order unlike any sort below
            "sf": p("Zed", gender="male"),
            "sd": p("Adams", birthDate="2000-01-01", gender="female"),
            "se": p(None, ["Nameless"], gender="unknown"),
            "sb": p("baker", birthDate="1985-01-01", gender="male"),
            "sa": p("Adams", birthDate="1990-05-05", gender="female"),
            "sc": p("Clark", birthDate="1990-05-06", gender="other"),
            "od1": obs(effectiveDateTime="2020", valueQuantity=f.quantity(5)),
            "od2": obs(effectiveDateTime="2021-06-01T00:00:00Z", valueQuantity=f.quantity(1)),
            "od3": obs(effectiveDateTime="2019-01-01", valueQuantity=f.quantity(3)),
            "od4": obs(),
        },
    )
    _check(
        client,
        "Patient",
        [
            ("_sort=family,-birthdate", ["sd", "sa", "sb", "sc", "sf", "se"]),
            ("_sort=-family,birthdate", ["sf", "sc", "sb", "sa", "sd", "se"]),
            ("_sort=family,birthdate", ["sa", "sd", "sb", "sc", "sf", "se"]),
            ("_sort=gender,_id", ["sa", "sd", "sb", "sf", "sc", "se"]),
            ("_sort=_id", ["sa", "sb", "sc", "sd", "se", "sf"]),
            ("_sort=-_id", ["sf", "se", "sd", "sc", "sb", "sa"]),
            ("_sort=-_lastUpdated", ["sc", "sa", "sb", "se", "sd", "sf"]),
            ("_sort=family&family=adams", {"sa", "sd"}),
        ],
    )
    # resources without the sort value come last, in either direction
    for query, first in (
        ("_sort=birthdate", ["sb", "sa", "sc", "sd"]),
        ("_sort=-birthdate", ["sd", "sc", "sa", "sb"]),
    ):
        got = f.ids(_run(client, "Patient", query))
        assert got[:4] == first and set(got[4:]) == {"se", "sf"}, (query, got)
    _check(
        client,
        "Observation",
        [
            ("_sort=-date", ["od2", "od1", "od3", "od4"]),
            ("_sort=date", ["od3", "od1", "od2", "od4"]),
            ("_sort=value-quantity", ["od2", "od3", "od1", "od4"]),
            ("_sort=-value-quantity", ["od1", "od3", "od2", "od4"]),
        ],
    )
    # paging through a multi-key sort keeps the order, missing values included
    for rtype, query, expected in (
        ("Patient", "_sort=family,-birthdate&_count=2", ["sd", "sa", "sb", "sc", "sf", "se"]),
        ("Patient", "_sort=-family,birthdate&_count=4", ["sf", "sc", "sb", "sa", "sd", "se"]),
        ("Observation", "_sort=-date&_count=3", ["od2", "od1", "od3", "od4"]),
    ):
        assert _walk(client, f"/fhir/{rtype}", _params(query))[0] == expected, query


def test_count_summary_and_total(client: TestClient) -> None:
    f.create_many(client, [f.patient(f"Count{i}") for i in range(7)] + [f.patient("Other")])
    page = f.search(client, "Patient", {"family": "count", "_count": "3"})
    assert len(f.ids(page)) == 3 and page["total"] == 7
    assert f.link(page, "next") and f.link(page, "previous") is None
    summary = f.search(client, "Patient", {"family": "count", "_summary": "count"})
    assert summary["total"] == 7 and "entry" not in summary and f.link(summary, "next") is None
    zero = f.search(client, "Patient", {"_count": "0"})
    assert zero["total"] == 8 and "entry" not in zero
    untotalled = f.search(client, "Patient", {"family": "count", "_total": "none"})
    assert "total" not in untotalled and len(f.ids(untotalled)) == 7
    accurate = f.search(client, "Patient", {"_total": "accurate", "_count": "2"})
    assert accurate["total"] == 8 and len(f.ids(accurate)) == 2
    clamped = f.search(client, "Patient", {"_count": "5000"})
    assert "_count=1000" in (f.link(clamped, "self") or "") and len(f.ids(clamped)) == 8
    default = f.search(client, "Patient")
    assert f.link(default, "self") == f"{BASE}/Patient" and default["total"] == 8


# -- _include / _revinclude ----------------------------------------------------------------------


def _modes(bundle: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in bundle.get("entry", []):
        res = e["resource"]
        out.setdefault(e["search"]["mode"], []).append(f"{res['resourceType']}/{res['id']}")
        assert e["fullUrl"] == f"{BASE}/{res['resourceType']}/{res['id']}"
    return {k: sorted(v) for k, v in out.items()}


def test_include_and_revinclude(client: TestClient) -> None:
    _seed(
        client,
        {
            "ia": f.patient("Inc"),
            "ib": f.patient("Inc"),
            "ie1": f.encounter("Patient/ia"),
            "io1": f.observation("Patient/ia", encounter={"reference": "Encounter/ie1"}),
            "io2": f.observation("Patient/ia"),
            "io3": f.observation("Patient/ib"),
            "io4": f.observation("Patient/missing"),
        },
    )
    cases: list[tuple[str, str, dict[str, list[str]]]] = [
        (
            "Observation",
            "_id=io1,io2&_include=Observation:patient",
            {"match": ["Observation/io1", "Observation/io2"], "include": ["Patient/ia"]},
        ),
        (
            "Observation",
            "_id=io1&_include=Observation:patient&_include=Observation:encounter",
            {"match": ["Observation/io1"], "include": ["Encounter/ie1", "Patient/ia"]},
        ),
        (
            "Observation",
            "_id=io4&_include=Observation:subject:Patient",
            {"match": ["Observation/io4"]},
        ),
        (
            "Observation",
            "_id=io3&_include=Observation:subject:Group",
            {"match": ["Observation/io3"]},
        ),
        (
            "Patient",
            "_id=ia&_revinclude=Observation:patient",
            {"match": ["Patient/ia"], "include": ["Observation/io1", "Observation/io2"]},
        ),
        (
            "Patient",
            "family=inc&_revinclude=Observation:subject&_revinclude=Encounter:patient",
            {
                "match": ["Patient/ia", "Patient/ib"],
                "include": [
                    "Encounter/ie1",
                    "Observation/io1",
                    "Observation/io2",
                    "Observation/io3",
                ],
            },
        ),
        ("Patient", "_id=ia&_revinclude=Observation:patient&_summary=count", {}),
    ]
    wrong = []
    for rtype, query, expected in cases:
        bundle = _run(client, rtype, query)
        if _modes(bundle) != expected:
            wrong.append((rtype, query, _modes(bundle)))
        if "_summary" not in query and bundle["total"] != len(expected["match"]):
            wrong.append((rtype, query, "total counts included resources"))
    assert wrong == []

    # included resources follow the page they belong to
    pages = _walk_bundles(
        client,
        "/fhir/Observation",
        [("_include", "Observation:patient"), ("_sort", "_id"), ("_count", "2")],
    )
    assert [_modes(b) for b in pages] == [
        {"match": ["Observation/io1", "Observation/io2"], "include": ["Patient/ia"]},
        {"match": ["Observation/io3", "Observation/io4"], "include": ["Patient/ib"]},
    ]


# -- POST _search --------------------------------------------------------------------------------


def test_post_search_equals_get(client: TestClient) -> None:
    f.create_many(
        client,
        [f.patient("Smith", [g]) for g in ("Cleo", "Ann", "Bob")] + [f.patient("Jones", ["Dan"])],
    )
    pairs = [("family", "smith"), ("_sort", "-given"), ("_count", "2")]
    got = f.search(client, "Patient", pairs)
    posted = f.json_of(client.post("/fhir/Patient/_search", data=dict(pairs)), 200)
    assert posted["type"] == "searchset"
    assert f.ids(posted) == f.ids(got) and len(f.ids(got)) == 2
    assert posted["total"] == got["total"] == 3
    assert f.link(posted, "self") == f.link(got, "self")
    # the next links lead to the same second page
    second_get = f.json_of(client.get(f.local(f.link(got, "next") or "")), 200)
    second_post = f.json_of(client.get(f.local(f.link(posted, "next") or "")), 200)
    assert f.ids(second_get) == f.ids(second_post) and len(f.ids(second_get)) == 1
    # parameters may be split between the URL and the body; they are AND'ed
    mixed = client.post("/fhir/Patient/_search?family=smith", data={"given": "ann"})
    assert [e["resource"]["name"][0]["given"] for e in f.json_of(mixed, 200)["entry"]] == [["Ann"]]
    everything = f.json_of(client.post("/fhir/Patient/_search"), 200)
    assert everything["total"] == 4


# -- paging --------------------------------------------------------------------------------------


def _walk_bundles(
    client: TestClient, path: str, params: list[tuple[str, str]], relation: str = "next"
) -> list[dict[str, Any]]:
    pages = [f.json_of(client.get(path, params=params), 200)]
    while (url := f.link(pages[-1], relation)) is not None:
        assert url.startswith(BASE), url
        pages.append(f.json_of(client.get(f.local(url)), 200))
        assert len(pages) < 50, "the links do not end"
    return pages


def _walk(
    client: TestClient, path: str, params: list[tuple[str, str]]
) -> tuple[list[str], list[int]]:
    pages = _walk_bundles(client, path, params)
    return [i for b in pages for i in f.ids(b)], [len(f.ids(b)) for b in pages]


def _families(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["name"][0]["family"] for e in bundle.get("entry", [])]


def _seed_pages(client: TestClient) -> list[str]:
    names = [f"Page{i:02d}" for i in range(25)]
    shuffled = [names[(i * 7) % 25] for i in range(25)]  # creation order is not the sort order
    f.create_many(client, [f.patient(n) for n in shuffled])
    return names


def test_paging_next_previous_and_tampered_cursors(client: TestClient) -> None:
    names = _seed_pages(client)
    pages = _walk_bundles(client, "/fhir/Patient", [("_sort", "family"), ("_count", "7")])
    assert [_families(p) for p in pages] == [names[0:7], names[7:14], names[14:21], names[21:25]]
    assert all(p["total"] == 25 for p in pages)
    assert f.link(pages[0], "previous") is None and f.link(pages[-1], "next") is None

    back = [pages[-1]]
    while (url := f.link(back[-1], "previous")) is not None:
        back.append(f.json_of(client.get(f.local(url)), 200))
        assert len(back) < 10
    assert [_families(p) for p in reversed(back)] == [_families(p) for p in pages]

    # without _sort every resource still comes exactly once
    ids, sizes = _walk(client, "/fhir/Patient", [("_count", "7")])
    assert sizes == [7, 7, 7, 4] and len(set(ids)) == 25
    _tampered_and_foreign_cursors_are_400(client)


def test_paging_cursors_survive_creates_and_deletes(client: TestClient) -> None:
    names = _seed_pages(client)
    by_family = {
        e["resource"]["name"][0]["family"]: e["resource"]["id"]
        for e in f.search(client, "Patient", {"_count": "100"})["entry"]
    }
    page1 = f.search(client, "Patient", [("_sort", "family"), ("_count", "7")])
    assert _families(page1) == names[0:7]

    f.create(client, f.patient("Aaa"))  # sorts before the cursor
    f.create(client, f.patient("Page00a"))  # so does this, inside the page already seen
    assert client.delete(f"/fhir/Patient/{by_family['Page03']}").status_code == 204
    page2 = f.json_of(client.get(f.local(f.link(page1, "next") or "")), 200)
    assert _families(page2) == names[7:14]

    assert client.delete(f"/fhir/Patient/{by_family['Page13']}").status_code == 204  # the edge
    assert client.delete(f"/fhir/Patient/{by_family['Page15']}").status_code == 204  # ahead
    f.create(client, f.patient("Page14a"))  # ahead of the cursor: it shows up
    page3 = f.json_of(client.get(f.local(f.link(page2, "next") or "")), 200)
    assert _families(page3) == ["Page14", "Page14a", *names[16:21]]
    page4 = f.json_of(client.get(f.local(f.link(page3, "next") or "")), 200)
    assert _families(page4) == names[21:25] and f.link(page4, "next") is None

    before = f.json_of(client.get(f.local(f.link(page2, "previous") or "")), 200)
    assert _families(before) == [
        "Page00",
        "Page00a",
        "Page01",
        "Page02",
        "Page04",
        "Page05",
        "Page06",
    ]
    first = f.json_of(client.get(f.local(f.link(before, "previous") or "")), 200)
    assert _families(first) == ["Aaa"] and f.link(first, "previous") is None


def _tampered_and_foreign_cursors_are_400(client: TestClient) -> None:
    page = f.search(client, "Patient", [("_sort", "family"), ("_count", "5")])
    token = dict(parse_qsl(urlsplit(f.link(page, "next") or "").query))["_cursor"]
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    other_key = cursors.encode(
        cursors.Cursor("Patient", (("_sort", "family"),), ("page04", 1), "next"), b"another key"
    )
    history = f.json_of(client.get("/fhir/Patient/_history", params={"_count": "2"}), 200)
    history_token = dict(parse_qsl(urlsplit(f.link(history, "next") or "").query))["_cursor"]
    bad = [
        ("Patient", flipped),
        ("Patient", token[:-3]),
        ("Patient", token + "x"),
        ("Patient", ""),
        ("Patient", "not a cursor"),
        ("Patient", other_key),
        ("Observation", token),  # another search's cursor
        ("Patient", history_token),
        ("Patient/_history", token),
        ("_history", history_token),
    ]
    wrong = []
    for path, value in bad:
        resp = f.check(client.get(f"/fhir/{path}", params={"_cursor": value}))
        body = resp.json()
        found = [x for i in body.get("issue", []) for x in i.get("expression", [])]
        if resp.status_code != 400 or "_cursor" not in found:
            wrong.append((path, value[:20], resp.status_code))
    assert wrong == []
    f.json_of(client.get("/fhir/Patient", params={"_cursor": token}), 200)  # the real one works
