"""Orthanc (DICOM server with DICOMweb) as a source of FHIR R4 ImagingStudy resources.

`client.OrthancClient` talks to Orthanc (REST and DICOMweb), `mapper` turns a study's DICOM JSON
into an ImagingStudy and the WADO-RS Endpoint (pure), `source.OrthancSource` follows Orthanc's
change log from a cursor and yields Batches for the sync (adapters.base).
"""
