"""The CDS Hooks 2.0 service (/cds-services): discovery, the services, feedback (see api.py)."""
