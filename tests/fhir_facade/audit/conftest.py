"""The secured-app fixtures of the security tests, shared here."""

from tests.fhir_facade.security.conftest import issuer, make_secure_app

__all__ = ["issuer", "make_secure_app"]
