"""Keyed pseudonyms and date shifts; no key, no run (unless the dev key is asked for)."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from cdw.config import DEV_KEY, CdwConfigError, CdwSettings
from cdw.pseudonym import Pseudonymizer


def test_cdw_pseudonyms_are_keyed_and_stable() -> None:
    a, b = Pseudonymizer(b"k" * 32), Pseudonymizer(b"j" * 32)
    assert a.person_id("p1") == Pseudonymizer(b"k" * 32).person_id("p1")
    assert a.person_id("p1") != b.person_id("p1")
    assert a.person_id("p1") != a.person_id("p2")
    assert 0 < a.person_id("p1") < 2**62
    assert len(a.source_key("Patient", "p1")) == 32


def test_cdw_date_shift_is_per_person_bounded_and_nonzero() -> None:
    pz = Pseudonymizer(b"k" * 32, max_shift_days=30)
    shifts = {pz.shift_days(f"p{i}") for i in range(300)}
    assert all(-30 <= s <= 30 and s != 0 for s in shifts)
    assert len(shifts) > 20
    d = date(2024, 1, 1)
    assert (pz.shift_date(d, "p1") - d).days == pz.shift_days("p1")
    assert Pseudonymizer(b"k" * 32, max_shift_days=0).shift_days("p1") == 0


def test_cdw_refuses_to_run_without_a_key(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("CDSS_CDW_PSEUDONYM_KEY", "CDSS_CDW_ALLOW_DEV_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(CdwConfigError):
        CdwSettings(_env_file=None).pseudonym_key()  # type: ignore[call-arg]
    with pytest.raises(CdwConfigError):
        CdwSettings(_env_file=None, cdw_pseudonym_key="short").pseudonym_key()  # type: ignore[call-arg]
    with caplog.at_level(logging.WARNING):
        assert CdwSettings(_env_file=None, cdw_allow_dev_key=True).pseudonym_key() == DEV_KEY  # type: ignore[call-arg]
    assert "development pseudonym key" in caplog.text
    monkeypatch.setenv("CDSS_CDW_PSEUDONYM_KEY", "x" * 20)
    assert CdwSettings(_env_file=None).pseudonym_key() == b"x" * 20  # type: ignore[call-arg]
