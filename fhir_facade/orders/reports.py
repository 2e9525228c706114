"""DiagnosticReports in the facade -> OpenEMR patient documents (PDF), per report category.

Why polled from the store rather than hooked on the API: reports arrive by several paths (the
imaging pipeline writes straight into the store, clients POST them), and OpenEMR's standard API
is the only way they reach the EHR's chart. A cursor (store_state) bounds each scan; a per-report
state key records the version exported, and the upload is skipped when OpenEMR already lists the
file (deterministic name per version), so a crash between upload and bookkeeping adds no copy.
Each document carries a link back to the facade resource it renders.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson

from adapters.base import MRN_SYSTEM
from adapters.openemr.auth import AuthError, PasswordGrantAuth
from fhir_facade import errors
from fhir_facade.orders import pdf
from fhir_facade.orders.config import OrderSettings
from fhir_facade.search.query import parse_search
from fhir_facade.store.base import Store, Unit

log = logging.getLogger(__name__)
SCOPES = "openid api:oemr user/document.read user/document.write user/patient.read"
CURSOR = "orders:reports:cursor"


class ExportError(RuntimeError):
    """OpenEMR could not take the document now; the next round tries again."""


def lines(report: dict[str, Any], link: str) -> list[str]:
    """The document's text: what the report says, then where it lives in the facade."""
    code = report.get("code") or {}
    title = code.get("text") or next(
        (c.get("display") for c in code.get("coding", []) if c.get("display")), "Report"
    )
    out = [str(title), "", f"Status: {report.get('status', '')}"]
    if report.get("effectiveDateTime"):
        out.append(f"Effective: {report['effectiveDateTime']}")
    if report.get("issued"):
        out.append(f"Issued: {report['issued']}")
    performers = [p.get("display") or p.get("reference") for p in report.get("performer", [])]
    if performers:
        out.append("Performer: " + ", ".join(str(p) for p in performers))
    out += ["", "Conclusion:", str(report.get("conclusion") or "(none)")]
    for concept in report.get("conclusionCode", []):
        for c in concept.get("coding", []):
            out.append(f"  {c.get('code', '')} {c.get('display', '')}".rstrip())
    out += ["", f"Source: {link}"]
    return out


class ReportExporter:
    def __init__(self, store: Store, settings: OrderSettings) -> None:
        if not settings.openemr_url:
            raise ValueError("CDSS_OPENEMR_URL is needed to export reports")
        self.store, self.settings = store, settings
        base = settings.openemr_url.rstrip("/")
        secret = settings.reports_openemr_client_secret
        self.auth = PasswordGrantAuth(
            f"{base}/oauth2/default/token",
            client_id=settings.reports_openemr_client_id,
            client_secret=secret.get_secret_value() if secret else None,
            username=settings.reports_openemr_user,
            password=settings.reports_openemr_password.get_secret_value(),
            scopes=SCOPES,
        )
        self.http = httpx.Client(
            base_url=f"{base}/apis/default/api", timeout=settings.orders_timeout_s
        )

    def close(self) -> None:
        self.http.close()
        self.auth.close()

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            headers = {"Authorization": f"Bearer {self.auth.token()}"}
            answer = self.http.request(method, path, headers=headers, **kw)
        except (httpx.HTTPError, OSError, AuthError) as exc:
            raise ExportError(f"OpenEMR {method} {path}: {exc}") from exc
        if answer.status_code == 401:
            self.auth.invalidate()
        return answer

    def run_once(self) -> int:
        """Export every new report version of the configured categories; returns how many."""
        exported = 0
        with self.store.read_unit() as unit:
            since = unit.get_state(CURSOR)
            pending = list(self._pending(unit, since))
        for report, last_updated, pid_mrn in pending:
            try:
                self._export(report, pid_mrn)
            except ExportError as exc:
                log.warning("DiagnosticReport/%s not exported yet: %s", report["id"], exc)
                return exported  # keep the cursor here; retry next round
            with self.store.unit() as unit:
                unit.set_state(_key(report), report["meta"]["versionId"])
                unit.set_state(CURSOR, last_updated)
            exported += 1
        return exported

    def _pending(
        self, unit: Unit, since: str | None
    ) -> list[tuple[dict[str, Any], str, tuple[str, str]]]:
        out: list[tuple[dict[str, Any], str, tuple[str, str]]] = []
        for category, path in self.settings.reports_export.items():
            pairs = [("category", category), ("_sort", "_lastUpdated"), ("_count", "200")]
            if since:
                pairs.append(("_lastUpdated", f"ge{since}"))
            for match in unit.search(parse_search("DiagnosticReport", pairs)).matches:
                report = orjson.loads(match.content or b"{}")
                if report.get("status") not in ("final", "amended", "corrected"):
                    continue
                if unit.get_state(_key(report)) == report["meta"]["versionId"]:
                    continue
                mrn = _mrn(unit, report)
                if mrn is None:
                    log.info("DiagnosticReport/%s: patient has no MRN; not exported", match.id)
                    continue
                out.append((report, report["meta"]["lastUpdated"], (mrn, path)))
        out.sort(key=lambda item: item[1])
        return out

    def _export(self, report: dict[str, Any], mrn_path: tuple[str, str]) -> None:
        mrn, path = mrn_path
        found = self._call("GET", "/patient", params={"pubpid": mrn})
        rows = found.json().get("data") if found.status_code == 200 else None
        if not rows:
            raise ExportError(
                f"OpenEMR has no patient with pubpid {mrn} (HTTP {found.status_code})"
            )
        pid = rows[0]["pid"]
        name = f"DiagnosticReport-{report['id']}-v{report['meta']['versionId']}.pdf"
        listed = self._call("GET", f"/patient/{pid}/document", params={"path": path})
        docs = listed.json() if listed.status_code == 200 else []
        if isinstance(docs, list) and any(d.get("filename") == name for d in docs):
            return  # uploaded before a crash: do not add a second copy
        base = (self.settings.base_url or "").rstrip("/")
        link = f"{base}/fhir/DiagnosticReport/{report['id']}/_history/{report['meta']['versionId']}"
        body = pdf.render(lines(report, link), title=name, link=link)
        sent = self._call(
            "POST",
            f"/patient/{pid}/document",
            params={"path": path},
            files={"document": (name, body, "application/pdf")},
        )
        if sent.status_code != 200 or sent.json() is not True:
            raise ExportError(f"OpenEMR refused {name}: HTTP {sent.status_code} {sent.text[:200]}")


def _key(report: dict[str, Any]) -> str:
    return f"orders:report-exported:{report['id']}"


def _mrn(unit: Unit, report: dict[str, Any]) -> str | None:
    ref = (report.get("subject") or {}).get("reference") or ""
    if not ref.startswith("Patient/"):
        return None
    try:
        patient = orjson.loads(unit.read("Patient", ref.split("/", 1)[1]).content or b"{}")
    except errors.OperationOutcomeError:
        return None
    mrns = [i.get("value") for i in patient.get("identifier", []) if i.get("system") == MRN_SYSTEM]
    return str(mrns[0]) if mrns and mrns[0] else None
