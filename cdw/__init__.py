"""Clinical data warehouse: the facade's FHIR data as a pseudonymised OMOP CDM 5.4 database,
and the feature sets the models train on (see cdw/README.md)."""
