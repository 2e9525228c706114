"""Incremental sync from the source systems into the facade's store (ARCHITECTURE 3.5)."""
