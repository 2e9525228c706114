"""Any standards-conformant DICOMweb PACS (dcm4chee-arc, Orthanc, cloud DICOM stores).

`client.DicomwebClient` speaks QIDO-RS / WADO-RS / STOW-RS only (no vendor API) with one retry
policy and pluggable authentication (`auth`: none, basic, bearer, OAuth2 client credentials);
`protocol.PacsClient` is the DICOMweb surface both it and `adapters.orthanc.client.OrthancClient`
offer; `factory.pacs_client(PacsSettings())` gives every imaging consumer the client of the
configured profile; `source.DicomwebSource` finds new, changed and deleted studies by QIDO-RS
polling and reconciliation, for sites whose PACS has no change feed.
"""
