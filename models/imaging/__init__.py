"""The imaging model: a small MONAI 3D UNet that finds pulmonary nodules in chest CT.

Modules: volume (DICOM -> HU volume), transforms (MONAI preprocessing), network, data (the
synthetic cohort's series and truth), train, evaluate, infer, fhir (results as FHIR), sr (DICOM
SR TID 1500). The pipeline that runs it on studies arriving in the PACS is models/pipeline.py.
"""
