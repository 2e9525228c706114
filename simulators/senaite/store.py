"""In-memory content tree of the SENAITE simulator: objects, paths, ids, UIDs and the clock.

SENAITE is a Plone site: every object lives in a folder (its physical path is the chain of ids),
has a 32-hex UID, a portal_type, creation/modification dates and, for workflowed types, a
review_state. The simulator keeps exactly that, so paths, parents and URLs come out as the real
JSON API renders them. UIDs are derived from a counter (uuid5) so that two runs that create the
same objects in the same order see the same UIDs, which keeps tests and captures reproducible.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_UID_NAMESPACE = uuid.UUID("0b9f3c52-2f7e-4f1e-8f55-5a3e6f0d9b21")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock: aware UTC now."""
    return datetime.now(UTC)


@dataclass(eq=False)
class Obj:
    """One content object (a catalog brain and its object in one, as far as the API shows)."""

    uid: str
    portal_type: str
    id: str
    parent: Obj | None
    title: str
    created: datetime
    modified: datetime
    seq: int
    fields: dict[str, Any] = field(default_factory=dict)
    review_state: str | None = None
    description: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    children: dict[str, Obj] = field(default_factory=dict)


class Store:
    """The content tree plus the id counters; one lock serialises writes from request threads."""

    def __init__(self, site: str, clock: Clock | None = None) -> None:
        self.site = site
        self.clock: Clock = clock or utc_now
        self.lock = threading.RLock()
        self._by_uid: dict[str, Obj] = {}
        # The catalog's indexes by portal type and by id (ids are unique per folder only):
        # uid -> object, in creation order, so a search scans only the candidates it can match.
        self._by_type: dict[str, dict[str, Obj]] = {}
        self._by_id: dict[str, dict[str, Obj]] = {}
        self._seq = 0
        self._counters: dict[str, int] = {}
        now = self.now()
        self.root = Obj(
            uid="0",
            portal_type="Plone Site",
            id=site,
            parent=None,
            title="SENAITE",
            created=now,
            modified=now,
            seq=0,
        )

    def now(self) -> datetime:
        value = self.clock()
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def _new_uid(self) -> str:
        self._seq += 1
        return uuid.uuid5(_UID_NAMESPACE, f"{self.site}:{self._seq}").hex

    def next_number(self, counter: str) -> int:
        """Next value of a named counter (ids like client-1, URI-0001 are per-prefix counters)."""
        value = self._counters.get(counter, 0) + 1
        self._counters[counter] = value
        return value

    def add(
        self,
        parent: Obj,
        portal_type: str,
        obj_id: str,
        *,
        title: str = "",
        fields: dict[str, Any] | None = None,
        review_state: str | None = None,
        description: str = "",
    ) -> Obj:
        now = self.now()
        obj = Obj(
            uid=self._new_uid(),
            portal_type=portal_type,
            id=obj_id,
            parent=parent,
            title=title or obj_id,
            created=now,
            modified=now,
            seq=self._seq,
            fields=dict(fields or {}),
            review_state=review_state,
            description=description,
        )
        parent.children[obj_id] = obj
        self._by_uid[obj.uid] = obj
        self._by_type.setdefault(portal_type, {})[obj.uid] = obj
        self._by_id.setdefault(obj_id, {})[obj.uid] = obj
        return obj

    def touch(self, obj: Obj) -> None:
        """Record a change: SENAITE updates `modified` on every edit and transition."""
        obj.modified = self.now()

    def get(self, uid: str | None) -> Obj | None:
        if not uid:
            return None
        return self._by_uid.get(uid)

    def path(self, obj: Obj) -> str:
        parts: list[str] = []
        node: Obj | None = obj
        while node is not None:
            parts.append(node.id)
            node = node.parent
        return "/" + "/".join(reversed(parts))

    def by_path(self, path: str) -> Obj | None:
        parts = [p for p in path.strip("/").split("/") if p]
        if not parts or parts[0] != self.site:
            return None
        node = self.root
        for part in parts[1:]:
            child = node.children.get(part)
            if child is None:
                return None
            node = child
        return node

    def folder(self, *ids: str) -> Obj:
        """A well-known container (e.g. `folder("bika_setup", "bika_sampletypes")`)."""
        node = self.root
        for part in ids:
            node = node.children[part]
        return node

    def objects(self) -> Iterator[Obj]:
        """All objects in creation order (the catalog's natural order)."""
        return iter(sorted(self._by_uid.values(), key=lambda o: o.seq))

    def of_type(self, portal_type: str) -> list[Obj]:
        """The objects of one portal type, in creation order."""
        return list(self._by_type.get(portal_type, {}).values())

    def portal_types(self) -> set[str]:
        return {t for t, objs in self._by_type.items() if objs}

    def with_id(self, obj_id: str) -> list[Obj]:
        """The objects with this id, in any folder, in creation order."""
        return list(self._by_id.get(obj_id, {}).values())

    def remove(self, obj: Obj) -> None:
        """Forget an object whose creation failed (SENAITE deletes it before answering)."""
        if obj.parent is not None:
            obj.parent.children.pop(obj.id, None)
        self._by_uid.pop(obj.uid, None)
        self._by_type.get(obj.portal_type, {}).pop(obj.uid, None)
        self._by_id.get(obj.id, {}).pop(obj.uid, None)
