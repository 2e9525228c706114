"""The records the simulated authorization server keeps in memory.

OpenEMR keeps the same things in MySQL (`oauth_clients`, `oauth_trusted_user`, refresh and JWT
history tables); an access token is only honoured while its record exists, which is what lets
verify() refuse revoked tokens even though they are self-contained JWTs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["users", "patient"]


@dataclass(frozen=True, slots=True)
class UserAccount:
    """An OpenEMR login: a clinician (`users`) or a portal patient (`patient`)."""

    username: str
    password: str
    fhir_user: str  # "Practitioner/<uuid>" or "Patient/<uuid>"
    role: Role = "users"
    patient: str | None = None  # the patient's own UUID, for role "patient"
    email: str | None = None  # OpenEMR's password grant asks patients for it
    name: str | None = None

    @property
    def uuid(self) -> str:
        """The `sub` of this user's tokens: the id part of fhirUser, as in OpenEMR."""
        return self.fhir_user.rsplit("/", 1)[-1]

    @property
    def own_patient(self) -> str | None:
        """The patient a patient-role login is bound to (None for clinicians)."""
        if self.role != "patient":
            return None
        return self.patient or self.uuid


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """What a valid access token allows: the FHIR routes check requests against it."""

    client_id: str
    scopes: frozenset[str]
    patient: str | None  # patient UUID bound to the token (patient/ scopes, EHR launch)
    encounter: str | None
    user: str | None  # fhirUser, e.g. "Practitioner/<uuid>"
    expires_at: int  # unix seconds


@dataclass(frozen=True, slots=True)
class LaunchContext:
    """What an EHR launch token carries (OpenEMR's SMARTLaunchToken: p, e, i)."""

    patient: str | None
    encounter: str | None = None
    intent: str | None = None


@dataclass(frozen=True, slots=True)
class AuthContext:
    """Who approved a grant and in which SMART context; authlib's "user" object.

    Carried from the consent to the code, from the code to the tokens and into refresh tokens,
    so a refresh answers with the same patient/encounter as the original launch.
    """

    account: UserAccount | None  # None: the system user of client_credentials
    launch: Literal["ehr", "standalone"] | None = None
    patient: str | None = None
    encounter: str | None = None
    intent: str | None = None
    nonce: str | None = None
    auth_time: int | None = None
    origin: str | None = None  # the authorization code the tokens descend from


@dataclass(slots=True)
class Client:
    """A registered OAuth client and the metadata echoed back at registration."""

    client_id: str
    client_secret: str | None  # None for public clients
    scopes: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: str | None
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    role: Literal["user", "patient"]
    registration_access_token: str
    registration_path: str
    issued_at: int
    metadata: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    launch_uri: str | None = None  # SMART EHR launch URI (the dashboard's "SMART Enabled Apps")

    @property
    def confidential(self) -> bool:
        return self.client_secret is not None

    @property
    def has_keys(self) -> bool:
        return bool(self.jwks) or bool(self.jwks_uri)


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """An authorization code: bound to client, redirect URI, PKCE challenge; lives 60 s."""

    code: str
    client_id: str
    redirect_uri: str | None
    scope: str
    context: AuthContext
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    """A refresh token (opaque, rotated on use, three months)."""

    token: str
    client_id: str
    scope: str
    context: AuthContext
    expires_at: float


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """The server-side twin of an access-token JWT, looked up by its jti."""

    jti: str
    grant: AccessGrant
    subject: str
    issued_at: int
    origin: str | None


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    """An /authorize request waiting for the user at the login/consent page."""

    request_id: str
    params: dict[str, str]
    expires_at: float
