"""AuditEvents (FHIR R4, shaped after the IHE BALP / DICOM audit message fields) for every access
to patient data: facade reads, searches and writes, hook calls, DICOMweb access, exports.

`events` builds them (pure); `sink` queues them for the CDS recorder's writer, which stores them
in the facade's store off the request path (cds_hooks/recorder.py)."""

from fhir_facade.audit.events import Actor, Event, build_event
from fhir_facade.audit.sink import AuditSink, NullSink, RecorderSink

__all__ = ["Actor", "AuditSink", "Event", "NullSink", "RecorderSink", "build_event"]
