"""The pages' FHIR access: the facade over HTTP, with the user's token, only for the patient.

Every read goes through here so the patient check cannot be forgotten: searches are always
constrained to the session's patient, reads of a resource that belongs to another patient are
refused with 403, and each access leaves an AuditEvent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from starlette.requests import Request

from adapters.base import MRN_SYSTEM
from smart_app.audit import audit_event, record
from smart_app.delegation import facade_token
from smart_app.oauth import LaunchError
from smart_app.sessions import Session
from smart_app.state import SmartState

PATIENT_PARAM = {
    "Patient": "_id",
    "ImagingStudy": "subject",
    "DiagnosticReport": "subject",
    "Observation": "subject",
    "ServiceRequest": "subject",
    "Condition": "subject",
    "MedicationRequest": "subject",
    "Encounter": "subject",
}


class AccessDenied(LaunchError):
    def __init__(self, message: str) -> None:
        super().__init__(message, 403)


def subject_of(resource: Mapping[str, Any]) -> str | None:
    """The patient id a resource belongs to (Patient itself, or its subject/patient)."""
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id"))
    for key in ("subject", "patient"):
        ref = resource.get(key)
        if isinstance(ref, dict) and str(ref.get("reference", "")).startswith("Patient/"):
            return str(ref["reference"]).removeprefix("Patient/")
    return None


class FhirAccess:
    def __init__(self, state: SmartState, request: Request, session: Session) -> None:
        self.state, self.request, self.session = state, request, session
        self.base = state.facade(request)

    async def _headers(self) -> dict[str, str]:
        base = self.state.base(self.request)
        token = await facade_token(self.state, self.session, base, self.base)
        return {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}

    async def _audit(self, path: str, status: int, note: str | None = None) -> None:
        event = audit_event(
            event="fhir-read",
            path=path,
            status=status,
            patient=self.session.patient,
            user=self.session.user,
            client_id=self.state.settings.client_id,
            description=note,
        )
        await record(self.state.audit, event)

    async def _get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        try:
            response = await self.state.http.get(
                self.base + path, params=list(params), headers=await self._headers()
            )
        except httpx.HTTPError as exc:
            raise LaunchError(f"The FHIR server could not be reached: {exc}", 502) from None
        if response.status_code in (401, 403):
            raise LaunchError(
                f"The FHIR server refused the session's token for {path}: {_diagnostics(response)}",
                response.status_code,
            )
        if response.status_code == 404:
            raise LaunchError(f"{path.lstrip('/')} was not found", 404)
        if response.status_code >= 400:
            raise LaunchError(f"The FHIR server answered {response.status_code} for {path}", 502)
        body = response.json()
        return body if isinstance(body, dict) else {}

    async def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        """One resource of the session's patient; 403 (audited) when it is someone else's."""
        path = f"/{resource_type}/{resource_id}"
        try:
            resource = await self._get(path)
        except LaunchError as exc:
            if exc.status != 404:
                raise
            # the facade answers a patient-bound token 404 for other patients' resources (it
            # does not reveal they exist); either way it is not in this patient's record
            await self._audit(path, 403, "not in the patient's compartment")
            raise AccessDenied(f"{resource_type}/{resource_id} is not this patient's") from None
        if subject_of(resource) != self.session.patient:
            await self._audit(path, 403, "belongs to another patient")
            raise AccessDenied(f"{resource_type}/{resource_id} is not this patient's")
        await self._audit(path, 200)
        return resource

    async def search(
        self, resource_type: str, params: Sequence[tuple[str, str]] = ()
    ) -> list[dict[str, Any]]:
        """Matches of the session's patient only (the patient criterion is always added)."""
        key = PATIENT_PARAM[resource_type]
        patient = self.session.patient or ""
        value = patient if key == "_id" else f"Patient/{patient}"
        query = [(k, v) for k, v in params if k != key] + [(key, value), ("_count", "200")]
        bundle = await self._get(f"/{resource_type}", query)
        found = [
            e["resource"]
            for e in bundle.get("entry", [])
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        ]
        await self._audit(f"/{resource_type}?{key}={value}", 200)
        return [r for r in found if subject_of(r) == patient]

    async def create(self, resource: dict[str, Any]) -> dict[str, Any]:
        """POST a resource of the session's patient (signed orders); the stored resource."""
        rtype = str(resource.get("resourceType"))
        if subject_of(resource) != self.session.patient:
            raise AccessDenied("An order can only be placed for the patient in context")
        headers = {**await self._headers(), "Content-Type": "application/fhir+json"}
        headers["Prefer"] = "return=representation"
        try:
            response = await self.state.http.post(
                f"{self.base}/{rtype}", json=resource, headers=headers
            )
        except httpx.HTTPError as exc:
            raise LaunchError(f"The FHIR server could not be reached: {exc}", 502) from None
        await self._audit(f"/{rtype}", response.status_code, "create")
        if response.status_code not in (200, 201):
            raise LaunchError(
                f"The order was refused: {_diagnostics(response)}",
                422 if response.status_code < 500 else 502,
            )
        body = response.json()
        return body if isinstance(body, dict) else {}

    async def mrns(self) -> tuple[str, ...]:
        """The patient's MRNs: what DICOM PatientID holds (adapters.base.MRN_SYSTEM)."""
        if not self.session.mrns:
            patient = await self.read("Patient", self.session.patient or "")
            self.session.mrns = tuple(
                str(i["value"])
                for i in patient.get("identifier", [])
                if isinstance(i, dict) and i.get("system") == MRN_SYSTEM and i.get("value")
            )
        return self.session.mrns


def _diagnostics(response: httpx.Response) -> str:
    """The OperationOutcome's diagnostics (never the token), for the user and the log."""
    try:
        issues = response.json().get("issue", [])
    except ValueError:
        return str(response.status_code)
    return "; ".join(str(i.get("diagnostics", i.get("code", ""))) for i in issues) or "refused"
