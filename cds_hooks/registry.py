"""Services as data plus a pure function, and the registry that routes calls to them.

A service module declares its discovery entries (one per hook it answers; the same id may be
registered for several hooks, #update-stale-guidance) and `evaluate(request, data) -> cards`.
Calls are routed by (id, hook). Discovery is derived from the declarations, so what is advertised
is exactly what runs.

Extension point: a CardContributor adds cards to a service (the AI cards will be contributors:
a preloaded model scoring the same prefetched data, or precomputed imaging findings). It may
declare its own prefetch templates, which are merged into the service's discovery entry. A
contributor that fails is logged and skipped: it never takes the service's rule cards with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Protocol

from cds_hooks.cards import Card
from cds_hooks.config import ClinicalOptions
from cds_hooks.errors import bad_request, not_found
from cds_hooks.request import HookRequest
from cds_hooks.templates import check_template

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """One discovery entry (#discovery): what the client sees, plus which prefetch keys the
    service cannot do without (412 when unobtainable)."""

    id: str
    hook: str
    title: str
    description: str
    prefetch: Mapping[str, str] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    usage_requirements: str | None = None

    def __post_init__(self) -> None:
        for template in self.prefetch.values():
            check_template(self.hook, template)
        unknown = self.required - set(self.prefetch)
        if unknown:
            raise ValueError(f"{self.id}: required keys {sorted(unknown)} have no template")

    def discovery_json(self, prefetch: Mapping[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
        }
        if prefetch:
            out["prefetch"] = dict(prefetch)
        if self.usage_requirements:
            out["usageRequirements"] = self.usage_requirements
        return out


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    """What the pure functions need besides the data: where the SMART app is, the windows."""

    smart_app_url: str
    clinical: ClinicalOptions = field(default_factory=ClinicalOptions)


@dataclass(frozen=True, slots=True)
class HookData:
    """Everything a service evaluates: the resolved prefetch, the clock, the options."""

    prefetch: Mapping[str, Any]
    now: datetime
    options: ServiceOptions
    patient_id: str | None = None
    _cache: dict[tuple[str, str | None], list[dict[str, Any]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def resources(self, key: str, resource_type: str | None = None) -> list[dict[str, Any]]:
        """Resources under a prefetch key, of the type asked for, the context patient's only
        (see _select); computed once per key and type for the call, then shared (read-only)."""
        found = self._cache.get((key, resource_type))
        if found is None:
            found = self._cache[(key, resource_type)] = self._select(key, resource_type)
        return found

    def _select(self, key: str, resource_type: str | None) -> list[dict[str, Any]]:
        """Resources under a prefetch key (a Bundle's entries, or the one resource), of the
        type asked for, and only the context patient's: prefetched data is checked rather than
        trusted (a resource about another patient is dropped and logged)."""
        value = self.prefetch.get(key)
        if not isinstance(value, Mapping):
            return []
        if value.get("resourceType") == "Bundle":
            items = [
                e.get("resource")
                for e in value.get("entry") or ()
                if type(e) is dict or isinstance(e, Mapping)
            ]
        else:
            items = [value]
        out: list[dict[str, Any]] = []
        for item in items:
            if not isinstance(item, dict):  # JSON objects arrive as dicts
                continue
            if resource_type and item.get("resourceType") != resource_type:
                continue
            if not self._same_patient(item):
                log.warning("prefetch %s: dropped a %s of another patient", key, resource_type)
                continue
            out.append(item)
        return out

    def _same_patient(self, resource: Mapping[str, Any]) -> bool:
        if self.patient_id is None:
            return True
        if resource.get("resourceType") == "Patient":
            return resource.get("id") in (None, self.patient_id)
        for name in ("subject", "patient"):
            ref = resource.get(name)
            if ref is None:
                continue
            if type(ref) is dict or isinstance(ref, Mapping):
                target = ref.get("reference")
                if isinstance(target, str):
                    rtype, _, rid = target.rstrip("/").rpartition("/")
                    if rtype.endswith("Patient") and rid != self.patient_id:
                        return False
        return True


Evaluate = Callable[[HookRequest, HookData], Sequence[Card]]


class Service(Protocol):
    """What a module under cds_hooks/services provides."""

    @property
    def ENTRIES(self) -> tuple[ServiceEntry, ...]: ...

    def evaluate(self, request: HookRequest, data: HookData) -> Sequence[Card]: ...


@dataclass(frozen=True, slots=True)
class CardContributor:
    name: str
    contribute: Evaluate
    prefetch: Mapping[str, str] = field(default_factory=dict)
    hooks: frozenset[str] | None = None  # None: every hook the service is registered for


@dataclass(slots=True)
class Registration:
    entry: ServiceEntry
    evaluate: Evaluate
    contributors: list[CardContributor] = field(default_factory=list)

    @property
    def templates(self) -> Mapping[str, str]:
        merged = dict(self.entry.prefetch)
        for c in self.contributors:
            merged.update(c.prefetch)
        return MappingProxyType(merged)

    def run(self, request: HookRequest, data: HookData) -> list[Card]:
        cards = list(self.evaluate(request, data))
        for contributor in self.contributors:
            try:
                cards.extend(contributor.contribute(request, data))
            except Exception:  # a contributor is optional by design; the rules still answer
                log.exception("card contributor %s failed on %s", contributor.name, self.entry.id)
        return cards


class Registry:
    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], Registration] = {}

    def register(self, entry: ServiceEntry, evaluate: Evaluate) -> None:
        key = (entry.id, entry.hook)
        if key in self._by_key:
            raise ValueError(f"service {entry.id} is already registered for {entry.hook}")
        self._by_key[key] = Registration(entry, evaluate)

    def register_module(self, module: Service) -> None:
        for entry in module.ENTRIES:
            self.register(entry, module.evaluate)

    def add_contributor(self, service_id: str, contributor: CardContributor) -> None:
        regs = [r for (sid, _), r in self._by_key.items() if sid == service_id]
        if not regs:
            raise KeyError(f"no service {service_id!r} to contribute to")
        for reg in regs:
            if contributor.hooks is None or reg.entry.hook in contributor.hooks:
                for template in contributor.prefetch.values():
                    check_template(reg.entry.hook, template)
                reg.contributors.append(contributor)

    def registrations(self) -> Iterable[Registration]:
        return self._by_key.values()

    def discovery(self) -> dict[str, Any]:
        return {"services": [r.entry.discovery_json(r.templates) for r in self.registrations()]}

    def lookup(self, service_id: str, hook: str | None) -> Registration:
        """The registration for (id, hook): 404 for an unknown id, 400 for a hook the id does
        not answer (the spec's "wrong hook")."""
        hooks = [h for (sid, h) in self._by_key if sid == service_id]
        if not hooks:
            raise not_found(f"no CDS service {service_id!r}")
        if hook is None:
            return self._by_key[(service_id, hooks[0])]
        reg = self._by_key.get((service_id, hook))
        if reg is None:
            raise bad_request(
                f"service {service_id!r} answers {', '.join(sorted(hooks))}, not {hook!r}", "hook"
            )
        return reg

    def known(self, service_id: str) -> bool:
        return any(sid == service_id for sid, _ in self._by_key)
