"""Create, as senaite.jsonapi's `create_items` does it, and samples as `create_analysisrequest`.

The container comes from the URL's UID, `parent_uid` or `parent_path` (or is fixed for set-up
types); creating in the portal root or in `bika_setup` itself is refused with 401, as is a type the
container does not allow. A sample gets its id from the sample type prefix (`SER-0001`), one
Analysis per requested service in `registered`, and its ranges from its Specification.
"""

from __future__ import annotations

from typing import Any

from simulators.senaite.catalogue import DEFAULT_SPECIFICATION_TITLE
from simulators.senaite.content import ApiError, copy_service_fields, resolve, update
from simulators.senaite.store import Obj, Store

FIXED_CONTAINERS: dict[str, tuple[str, ...]] = {
    "Client": ("clients",),
    "SampleType": ("bika_setup", "bika_sampletypes"),
    "AnalysisService": ("bika_setup", "bika_analysisservices"),
    "AnalysisCategory": ("bika_setup", "bika_analysiscategories"),
    "Department": ("bika_setup", "bika_departments"),
}
ALLOWED_IN: dict[str, set[str]] = {
    "Contact": {"Client"},
    "AnalysisRequest": {"Client"},
    "ARTemplate": {"ARTemplates", "Client"},
    "AnalysisSpec": {"AnalysisSpecs", "Client"},
}
ID_PREFIX = {
    "Client": "client",
    "Contact": "contact",
    "SampleType": "sampletype",
    "AnalysisService": "analysisservice",
    "AnalysisCategory": "analysiscategory",
    "Department": "department",
    "ARTemplate": "artemplate",
    "AnalysisSpec": "analysisspec",
}


def container_for(
    store: Store, portal_type: str, record: dict[str, Any], container: Obj | None
) -> Obj:
    """`find_target_container`: a fixed folder, the URL's UID, parent_uid or parent_path."""
    parent_uid = record.pop("parent_uid", None)
    parent_path = record.pop("parent_path", None)
    if portal_type in FIXED_CONTAINERS:
        return store.folder(*FIXED_CONTAINERS[portal_type])
    if container is None:
        if not parent_uid and not parent_path:
            raise ApiError(404, "No target UID/PATH information found")
        container = store.get(parent_uid) if parent_uid else store.by_path(str(parent_path))
    if container is None:
        raise ApiError(404, "No target container found")
    if container.portal_type not in ALLOWED_IN.get(portal_type, set()):
        raise ApiError(401, f"Creation of '{portal_type}' is not allowed")
    return container


def create(
    store: Store,
    portal_type: str | None,
    record: dict[str, Any],
    container: Obj | None,
    *,
    actor: str,
    patient: bool,
    auto_spec: bool,
) -> Obj:
    """Create one object from one record of the request body."""
    record = dict(record)
    portal_type = portal_type or record.pop("portal_type", None)
    record.pop("portal_type", None)
    if not isinstance(portal_type, str) or (
        portal_type not in ALLOWED_IN and portal_type not in FIXED_CONTAINERS
    ):
        raise ApiError(401, f"Creation of '{portal_type}' is not allowed")
    target = container_for(store, portal_type, record, container)
    record.pop("id", None)  # SENAITE always generates the id
    if portal_type == "AnalysisRequest":
        obj = create_sample(store, target, record, auto_spec=auto_spec)
        record = {k: v for k, v in record.items() if k not in ("SampleType", "Analyses")}
    else:
        prefix = ID_PREFIX.get(portal_type, portal_type.lower())
        obj = store.add(
            target, portal_type, f"{prefix}-{store.next_number(prefix)}", review_state="active"
        )
    try:
        update(store, obj, record, actor=actor, patient=patient)
    except ApiError:
        for child in list(obj.children.values()):
            store.remove(child)
        store.remove(obj)
        raise
    return obj


def _services(store: Store, record: dict[str, Any], template: Obj | None) -> list[Obj]:
    requested = record.get("Analyses") or []
    if not requested and template is not None:
        requested = [a.get("service_uid") for a in template.fields.get("Analyses") or []]
    if not isinstance(requested, list):
        requested = [requested]
    services = []
    for value in requested:
        service = resolve(store, value)
        if service is None or service.portal_type != "AnalysisService":
            raise ApiError(400, f"No analysis service found for {value!r}")
        services.append(service)
    if not services:
        raise ApiError(400, "No analyses, profiles or template given")
    return services


def _specification(store: Store, record: dict[str, Any], auto_spec: bool) -> Obj | None:
    spec = resolve(store, record.get("Specification"))
    if spec is None and auto_spec:
        specs = [s for s in store.of_type("AnalysisSpec") if s.title == DEFAULT_SPECIFICATION_TITLE]
        spec = specs[0] if specs else None
    return spec


def create_sample(store: Store, client: Obj, record: dict[str, Any], *, auto_spec: bool) -> Obj:
    """A sample in `sample_due` with its analyses in `registered` (no sampling workflow)."""
    template = resolve(store, record.get("Template"))
    sample_type = resolve(store, record.get("SampleType"))
    if sample_type is None and template is not None:
        sample_type = store.get(template.fields.get("SampleType"))
    if sample_type is None or sample_type.portal_type != "SampleType":
        raise ApiError(400, "Please provide a SampleType")
    if resolve(store, record.get("Contact")) is None:
        raise ApiError(400, "Please provide a Contact")
    if not record.get("DateSampled"):
        raise ApiError(400, "Please provide a DateSampled")
    services = _services(store, record, template)
    spec = _specification(store, record, auto_spec)
    ranges = {r["keyword"]: r for r in (spec.fields.get("ResultsRange") or [])} if spec else {}
    prefix = str(sample_type.fields.get("Prefix") or "S")
    sample_id = f"{prefix}-{store.next_number('sample:' + prefix):04d}"
    sample = store.add(
        client,
        "AnalysisRequest",
        sample_id,
        review_state="sample_due",
        description=f"{sample_id} {client.title}",
        fields={"SampleType": sample_type.uid},
    )
    if template is not None:
        sample.fields["Template"] = template.uid
    if spec is not None:
        sample.fields["Specification"] = spec.uid
        sample.fields["ResultsRange"] = list(ranges.values())
    for service in services:
        fields = copy_service_fields(service)
        keyword = str(fields.get("Keyword"))
        fields["ResultsRange"] = dict(ranges[keyword]) if keyword in ranges else None
        store.add(
            sample,
            "Analysis",
            keyword,
            title=service.title,
            description=service.description,
            fields=fields,
            review_state="registered",
        )
    sample.fields["Analyses"] = [a.uid for a in sample.children.values()]
    return sample
