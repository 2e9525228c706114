"""Who may call the facade and what they may see: bearer tokens (JWT via the issuer's JWKS, or
RFC 7662 introspection), SMART scopes (v1 and v2) and the patient compartment of `patient/`
scopes, input bounds, and the SMART discovery document. Installed around the facade's ASGI app
by the composition root (cdss.app), so the routes stay about FHIR and nothing else."""
