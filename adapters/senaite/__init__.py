"""SENAITE LIS adapter: samples and results from the senaite.jsonapi into FHIR R4.

`client.SenaiteClient` does the HTTP, `payloads` models the raw JSON leniently, `mapper` (with
`observation`, `results`, `terminology`, `loinc`) turns a sample and its analyses into
ServiceRequest, Specimen, Observations and a DiagnosticReport, and `source.SenaiteSource` pulls
what changed since a cursor for the sync.
"""
