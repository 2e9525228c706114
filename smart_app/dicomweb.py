"""`/dicom-web`: the patient-scoped DICOMweb proxy the viewer reads (QIDO-RS, WADO-RS).

The upstream is the site's PACS, whatever its profile (`orthanc` or standard `dicomweb`, e.g.
dcm4chee-arc) and auth kind, as CDSS_PACS_* configure it (smart_app/pacs.py). A PACS sends no
CORS headers and knows nothing of SMART sessions (ARCHITECTURE §1), so the
viewer reads DICOM through the app's own origin. Every request needs a live session (401
otherwise); a request that names a study is forwarded only when that study's PatientID is one of
the session patient's MRNs (403 otherwise); study searches are constrained to those MRNs. Each
access leaves an AuditEvent. WADO requests always carry an explicit transfer syntax (Orthanc
DICOMweb 1.7 rejects `*/*`, environment.md pitfall 1): explicit VR little endian unless the
client asked for another.
"""

from __future__ import annotations

import logging
import re

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from smart_app.audit import audit_event, record
from smart_app.fhir import FhirAccess
from smart_app.oauth import LaunchError
from smart_app.sessions import Session
from smart_app.state import SmartState

log = logging.getLogger(__name__)
EXPLICIT_LE = "1.2.840.10008.1.2.1"
UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
PASS_HEADERS = ("content-type",)  # httpx decodes gzip: the length is recomputed
DICOM_JSON = "application/dicom+json"


def wado_accept(path: str, accept: str | None) -> str:
    """The Accept header sent upstream: the client's when it names a transfer syntax or a
    rendered/metadata type, else the explicit default for the resource kind."""
    if path.endswith("/metadata") or path.endswith(("/series", "/instances", "/studies")):
        return DICOM_JSON
    if "/rendered" in path:
        return accept if accept and accept.startswith("image/") else "image/png"
    wanted = accept or ""
    if "transfer-syntax=" in wanted:
        return wanted
    if "/frames/" in path:
        return f'multipart/related; type="application/octet-stream"; transfer-syntax={EXPLICIT_LE}'
    return f'multipart/related; type="application/dicom"; transfer-syntax={EXPLICIT_LE}'


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def build_router(state: SmartState) -> APIRouter:
    router = APIRouter()

    async def owner(study_uid: str) -> str | None:
        """The PatientID the PACS holds for the study (QIDO), None when it has no such study."""
        url = f"{state.dicomweb_url}/studies"
        params = {"StudyInstanceUID": study_uid, "includefield": "00100020"}
        response = await state.http.get(
            url, params=params, auth=state.dicomweb_auth, headers={"Accept": DICOM_JSON}
        )
        response.raise_for_status()
        rows = response.json() if response.content else []
        values = [r.get("00100020", {}).get("Value", [None])[0] for r in rows or []]
        return str(values[0]) if values and values[0] is not None else None

    async def allowed(request: Request, session: Session, study_uid: str) -> bool:
        if study_uid not in session.studies:
            mrns = await FhirAccess(state, request, session).mrns()
            session.studies[study_uid] = (await owner(study_uid)) in set(mrns)
        return session.studies[study_uid]

    @router.get("/{path:path}")
    async def proxy(path: str, request: Request) -> Response:
        session = state.session(request)
        if session is None or not session.authorized:
            return _problem(401, "No SMART session: launch the app from the EHR")
        if state.dicomweb_url is None:
            return _problem(503, "No PACS is configured (CDSS_PACS_URL)")
        parts = path.strip("/").split("/")
        params: list[tuple[str, str | int | float | bool | None]] = list(
            request.query_params.multi_items()
        )
        parts_ = path.strip("/").split("/")
        wado = len(parts_) > 2 and parts_[-1] not in {"series", "instances"}
        kind = "dicomweb-wado" if wado else "dicomweb-qido"
        try:
            await state.access_token(session)  # 401 when the session can no longer be refreshed
            if parts[0] != "studies" or any(
                p and not UID.match(p) and not p.isalpha() for p in parts[1:]
            ):
                return _problem(400, f"Unsupported DICOMweb path /{path}")
            study_uid = parts[1] if len(parts) > 1 else request.query_params.get("StudyInstanceUID")
            if study_uid:
                if not await allowed(request, session, study_uid):
                    await _audit(state, session, request, kind, 403)
                    return _problem(403, "This study does not belong to the patient in context")
            else:
                mrns = await FhirAccess(state, request, session).mrns()
                if not mrns:
                    return JSONResponse([], media_type=DICOM_JSON)
                params = [(k, v) for k, v in params if k not in {"PatientID", "00100020"}]
                params.append(("PatientID", mrns[0]))
            upstream = await state.http.get(
                f"{state.dicomweb_url}/{path.strip('/')}",
                params=params,
                auth=state.dicomweb_auth,
                headers={
                    "Accept": wado_accept("/" + path.strip("/"), request.headers.get("accept"))
                },
            )
        except LaunchError as exc:
            return _problem(exc.status, str(exc))
        except httpx.HTTPError as exc:
            log.warning("DICOMweb upstream failed for /%s: %s", path, exc)
            return _problem(502, "The PACS could not be reached")
        await _audit(state, session, request, kind, upstream.status_code)
        headers = {k: v for k, v in upstream.headers.items() if k.lower() in PASS_HEADERS}
        headers["Cache-Control"] = "private, no-store"
        return Response(upstream.content, status_code=upstream.status_code, headers=headers)

    return router


async def _audit(
    state: SmartState, session: Session, request: Request, kind: str, status: int
) -> None:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    event = audit_event(
        event=kind,
        path=path,
        status=status,
        patient=session.patient,
        user=session.user,
        client_id=state.settings.client_id,
    )
    await record(state.audit, event)
