"""What every part of the simulated authorization server shares: URLs, clock, keys, users."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from simulators.openemr.oauth.crypto import LaunchSealer, ServerKey
from simulators.openemr.oauth.models import Client, UserAccount
from simulators.openemr.oauth.store import OAuthStore

Clock = Callable[[], float]
PatientChoice = tuple[str, str]
"""(patient UUID, label shown in the picker)."""
PatientPicker = Callable[[], Sequence[PatientChoice]]
"""Lists the patients a standalone `launch/patient` login can choose from; with auto_approve
the first one is taken, as a user clicking the top row of OpenEMR's patient picker would."""

SYSTEM_USER_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, "openemr-simulator:oe-system"))
"""The `sub` of client_credentials tokens: OpenEMR's built-in system user."""

DEFAULT_ADMIN = UserAccount(
    username="admin",
    password="pass",
    fhir_user="Practitioner/" + str(uuid.uuid5(uuid.NAMESPACE_URL, "openemr-simulator:admin")),
    name="Administrator",
)
"""OpenEMR's docker image ships admin/pass; the simulator does the same when given no users."""


@dataclass(frozen=True, slots=True)
class Urls:
    """OpenEMR's URL layout for site `default` (source-systems.md §1.1)."""

    issuer_base: str  # "http://host:port"

    @property
    def fhir_base(self) -> str:
        return f"{self.issuer_base}/apis/default/fhir"

    @property
    def oauth_base(self) -> str:
        return f"{self.issuer_base}/oauth2/default"

    def oauth(self, endpoint: str) -> str:
        return f"{self.oauth_base}/{endpoint}"

    @property
    def token(self) -> str:
        return self.oauth("token")

    @property
    def smart_style(self) -> str:
        return f"{self.issuer_base}/public/smart-styles/smart-light.json"

    @property
    def audiences(self) -> tuple[str, ...]:
        """The `aud` values /authorize accepts: FHIR, standard API and portal bases."""
        api = f"{self.issuer_base}/apis/default"
        return (self.fhir_base, f"{api}/api", f"{api}/portal")


@dataclass(slots=True)
class ServerContext:
    """State and configuration handed to the grants, the token issuer and the routes."""

    urls: Urls
    store: OAuthStore
    clock: Clock
    key: ServerKey
    sealer: LaunchSealer
    users: Mapping[str, UserAccount]
    default_user: UserAccount | None
    patient_picker: PatientPicker | None
    auto_approve: bool
    password_grant: bool

    def now(self) -> int:
        return int(self.clock())

    def authenticate(self, username: str, password: str) -> UserAccount | None:
        account = self.users.get(username)
        if account is None or not hmac.compare_digest(account.password, password):
            return None
        return account

    def client_jwks(self, client: Client) -> dict[str, Any]:
        """The client's public keys: registered inline, else fetched from its jwks_uri."""
        if client.jwks:
            return client.jwks
        if not client.jwks_uri:
            return {"keys": []}
        response = httpx.get(client.jwks_uri, timeout=5.0)
        response.raise_for_status()
        body = response.json()
        return body if isinstance(body, dict) else {"keys": []}

    def first_patient(self) -> str | None:
        choices = self.patient_picker() if self.patient_picker else ()
        return choices[0][0] if choices else None
