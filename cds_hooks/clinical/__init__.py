"""Clinical equations and tables used by the CDS services (each cites its source)."""
