"""Simulated OpenEMR OAuth2/OIDC/SMART authorization server (source-systems.md §1.2-1.5, §1.10).

The FHIR simulator mounts `OAuthServer.router()`, checks each request's bearer token with
`OAuthServer.verify()` and the resulting `AccessGrant` with `allows()` / `allows_api()`.
"""

from simulators.openemr.oauth.context import PatientChoice, PatientPicker
from simulators.openemr.oauth.models import AccessGrant, UserAccount
from simulators.openemr.oauth.registration import RegistrationError
from simulators.openemr.oauth.scopes import (
    Interaction,
    allows,
    allows_api,
    category_restrictions,
    parse_scope,
    patient_bound,
)
from simulators.openemr.oauth.server import OAuthServer

__all__ = [
    "AccessGrant",
    "Interaction",
    "OAuthServer",
    "PatientChoice",
    "PatientPicker",
    "RegistrationError",
    "UserAccount",
    "allows",
    "allows_api",
    "category_restrictions",
    "parse_scope",
    "patient_bound",
]
