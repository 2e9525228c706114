"""The PACS health probe follows CDSS_PACS_PROFILE: Orthanc's /system, or QIDO-RS on any
DICOMweb server (checked against the real Orthanc's DICOMweb plugin)."""

from __future__ import annotations

import asyncio

import pytest

from adapters.dicomweb.settings import PacsSettings
from cds_hooks.source_health import missing_source_cards, unavailable
from cdss.observability.health import SourceHealth, probe_targets
from cdss.sources import SourceSettings
from tests.support import orthanc
from tests.support.postgres import free_port


def test_each_profile_probes_its_own_url() -> None:
    sources = SourceSettings(orthanc_url="http://orthanc:8042")
    legacy = probe_targets(sources, PacsSettings(url="http://orthanc:8042"))
    assert legacy == {"orthanc": "http://orthanc:8042/system"}
    standard = PacsSettings(profile="dicomweb", url="http://pacs:8080/dcm4chee-arc/aets/X/rs")
    assert probe_targets(sources, standard) == {
        "pacs": "http://pacs:8080/dcm4chee-arc/aets/X/rs/studies?limit=1"
    }
    assert probe_targets(SourceSettings(), PacsSettings()) == {}


def test_a_dicomweb_pacs_is_probed_by_qido_and_named_in_the_cards() -> None:
    reason = orthanc.available()
    if reason is not None:
        pytest.fail(f"Orthanc is required: {reason}")
    dead = f"http://127.0.0.1:{free_port()}/dicom-web"
    with orthanc.orthanc(dicom_server=False) as server:
        live = PacsSettings(profile="dicomweb", url=server.dicomweb_url, user="x", password="y")
        health = SourceHealth(probe_targets(SourceSettings(), live))
        asyncio.run(health.probe_all())
        assert health.report()["pacs"]["status"] == "up"  # a 401 still proves it is there
        health = SourceHealth(
            probe_targets(SourceSettings(), PacsSettings(profile="dicomweb", url=dead))
        )
        asyncio.run(health.probe_all())
    assert health.down() == ["pacs"]
    missing = unavailable("patient-imaging-summary", health)
    assert missing == ["pacs"]
    [card] = missing_source_cards("patient-imaging-summary", missing)
    assert card.summary.startswith("The PACS (imaging archive) is unreachable")
