"""The JSON API operations behind the routes: read, search, create, update, delete, users.

Each returns the answer's dict without `_runtime` (the HTTP layer adds it, as plone.jsonapi.core's
`runtime` decorator does). Errors are raised as ApiError (status + message) or WorkflowError
(which SENAITE lets through as `success: false` with HTTP 200).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from starlette.datastructures import URL, QueryParams

from simulators.senaite.catalog import Query, envelope, matches, parse_query, sort_key
from simulators.senaite.content import ApiError, find_object, update
from simulators.senaite.creation import create
from simulators.senaite.render import CATALOG_OF_TYPE, brain, catalog_of, render
from simulators.senaite.schemas import INDEXES
from simulators.senaite.shapes import Context
from simulators.senaite.store import Obj, Store
from simulators.senaite.workflow import transition

_TRUE = {"1", "y", "yes", "true", "on"}
DEFAULT_PAGE_SIZE = 25
ACTIONS = ("create", "update", "delete")


@dataclass(frozen=True, slots=True)
class Call:
    """One request as the operations see it."""

    ctx: Context
    params: QueryParams
    url: URL
    user: str | None  # None: anonymous
    auto_spec: bool = True

    def flag(self, name: str) -> bool | None:
        value = self.params.get(name)
        return None if value is None else value.strip().lower() in _TRUE


def is_uid(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value.lower())


def portal_type_of(call: Call, resource: str) -> str | None:
    """`resource_to_portal_type`: the lower-cased resource name maps to a known portal type."""
    wanted = resource.lower().replace(" ", "")
    types = call.ctx.store.portal_types()
    types |= {"AnalysisRequest", "Analysis", "Client", "Contact", "ARTemplate", "AnalysisSpec"}
    for portal_type in types:
        if portal_type.lower().replace(" ", "") == wanted:
            return portal_type
    return None


def get_record(call: Call, uid: str) -> dict[str, Any]:
    obj = call.ctx.store.get(uid)
    if obj is None or call.user is None:
        raise ApiError(404, "No object found")
    return render(obj, call.ctx, via="object", complete=True, workflow=bool(call.flag("workflow")))


def get_batched(call: Call, portal_type: str | None, uid: str | None = None) -> dict[str, Any]:
    """A batched search; with a UID the object itself, complete, as `get_search_results` does."""
    size = _int(call.params.get("limit"), DEFAULT_PAGE_SIZE)
    start = max(0, _int(call.params.get("b_start"), 0))
    complete = call.flag("complete")
    if uid is not None:
        found = call.ctx.store.get(uid)
        objs = [found] if found is not None and call.user is not None else []
        via: Literal["object", "catalog"] = "object"
    else:
        objs = search(call, portal_type) if call.user is not None else []
        via = "catalog"
    size = size if size > 0 else max(1, len(objs))
    page = objs[start : start + size]
    items = [
        render(
            o,
            call.ctx,
            via=via,
            complete=bool(complete) or uid is not None,
            workflow=bool(call.flag("workflow")),
        )
        for o in page
    ]
    return envelope(len(objs), start, size, call.url) | {"items": items}


def search(call: Call, portal_type: str | None) -> list[Obj]:
    catalog = call.params.get("catalog")
    query = parse_query(call.params, catalog)
    types = set(call.params.getlist("portal_type"))
    if portal_type:
        types = {portal_type}
    found: list[tuple[Obj, Mapping[str, Any]]] = []
    for obj in _candidates(call.ctx.store, types, catalog, query):
        cols = Columns(obj, call.ctx)
        if matches(obj, query, call.ctx, cols):
            found.append((obj, cols))
    return _sorted(call, query, found)


def _candidates(store: Store, types: set[str], catalog: str | None, query: Query) -> list[Obj]:
    """What the catalog could match, in creation order: the objects of the searched types (the
    same set a scan of every object keeps), narrowed by a UID or getRequestID filter when one is
    given. `matches` still checks every filter on each candidate."""

    def searched(obj_type: str) -> bool:
        if types and obj_type not in types:
            return False
        if catalog and CATALOG_OF_TYPE.get(obj_type, "portal_catalog") != catalog:
            return False
        return bool(types or catalog) or obj_type not in CATALOG_OF_TYPE

    pool = {t for t in store.portal_types() if searched(t)}
    indexed = {name for t in pool for name in INDEXES[CATALOG_OF_TYPE.get(t, "portal_catalog")]}
    if "UID" in query.filters and all(
        "UID" in INDEXES[CATALOG_OF_TYPE.get(t, "portal_catalog")] for t in pool
    ):
        objs = [o for u in query.filters["UID"] if (o := store.get(u)) is not None]
    elif pool == {"Analysis"} and "getRequestID" in query.filters and "getRequestID" in indexed:
        samples = [s for sid in query.filters["getRequestID"] for s in store.with_id(sid)]
        objs = [a for s in samples for a in s.children.values()]
    elif pool == {"Analysis"} and "getAncestorsUIDs" in query.filters:
        uids = {u for value in query.filters["getAncestorsUIDs"] for u in value.split(",")}
        objs = [o for u in uids if (top := store.get(u)) is not None for o in _below(top)]
    else:
        objs = [o for t in pool for o in store.of_type(t)]
    unique = {o.uid: o for o in objs if o.portal_type in pool}
    return sorted(unique.values(), key=lambda o: o.seq)


def _below(obj: Obj) -> Iterator[Obj]:
    """Everything inside an object (a sample's analyses, a client's samples and theirs)."""
    for child in obj.children.values():
        yield child
        yield from _below(child)


class Columns(Mapping[str, Any]):
    """An object's catalog metadata columns (its brain), computed on first use: most objects
    a search looks at are told apart by an index that needs none."""

    def __init__(self, obj: Obj, ctx: Context) -> None:
        self.obj, self.ctx = obj, ctx
        self._cols: dict[str, Any] | None = None

    def _all(self) -> dict[str, Any]:
        if self._cols is None:
            self._cols = brain(self.obj, self.ctx)
        return self._cols

    def __getitem__(self, key: str) -> Any:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def _sorted(call: Call, query: Query, found: list[tuple[Obj, Mapping[str, Any]]]) -> list[Obj]:
    name = query.sort_on
    if name and all(name in INDEXES[catalog_of(o)] for o, _ in found):
        found.sort(
            key=lambda pair: sort_key(pair[0], name, call.ctx, pair[1]), reverse=query.reverse
        )
    elif query.reverse:
        found.reverse()
    objs = [o for o, _ in found]
    return objs[: query.sort_limit] if query.sort_limit else objs


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def action(
    call: Call,
    name: str,
    records: list[dict[str, Any]],
    *,
    portal_type: str | None,
    uid: str | None,
) -> dict[str, Any]:
    """POST create/update/delete: `{"count", "items", "url"}` with complete items."""
    if call.user is None:
        raise ApiError(401, "You are not allowed to modify this content")
    store = call.ctx.store
    patient = call.ctx.patient_extension
    container = store.get(uid) if uid else None
    results: list[Obj] = []
    if name == "create":
        for record in records:
            results.append(
                create(
                    store,
                    portal_type,
                    record,
                    container,
                    actor=call.user,
                    patient=patient,
                    auto_spec=call.auto_spec,
                )
            )
        if not results:
            raise ApiError(400, "No Objects could be created")
    elif name == "update":
        results = _update(call, records, container)
    else:
        results = _delete(call, records, container)
    items = [render(o, call.ctx, via="object", complete=True) for o in results]
    return {"count": len(items), "items": items, "url": f"{call.ctx.api_base}/{name}"}


def _update(call: Call, records: list[dict[str, Any]], target: Obj | None) -> list[Obj]:
    store = call.ctx.store
    assert call.user is not None
    if target is not None:
        record = records[0] if records else {}
        return [update(store, target, record, actor=call.user, patient=call.ctx.patient_extension)]
    results = []
    for record in records:
        obj = find_object(store, record)
        if obj is not None:
            results.append(
                update(store, obj, record, actor=call.user, patient=call.ctx.patient_extension)
            )
    if not results:
        raise ApiError(400, "No Objects could be updated")
    return results


def _delete(call: Call, records: list[dict[str, Any]], target: Obj | None) -> list[Obj]:
    """Deactivation only: SENAITE keeps everything for traceability."""
    store = call.ctx.store
    assert call.user is not None
    objs = [target] if target else [o for r in records if (o := find_object(store, r))]
    for obj in objs:
        transition(store, obj, "deactivate", call.user)
    if not objs:
        raise ApiError(404, "No Objects could be found")
    return objs


def user_info(call: Call, username: str | None) -> dict[str, Any]:
    base = f"{call.ctx.api_base}/users"
    if call.user is None:
        return {
            "username": "Anonymous User",
            "authenticated": False,
            "roles": ["Anonymous"],
            "api_url": f"{base}/current",
        }
    name = username or call.user
    return {
        "username": name,
        "fullname": name,
        "email": "",
        "roles": ["Manager", "LabManager", "Authenticated"],
        "groups": ["AuthenticatedUsers", "LabManagers"],
        "authenticated": name == call.user,
        "api_url": f"{base}/{name}",
    }


def users_listing(call: Call, username: str | None, users: Mapping[str, str]) -> dict[str, Any]:
    if call.user is None or username == "current":
        names: list[str | None] = [call.user]
    elif username is None:
        names = list(users)
    else:
        names = [username] if username in users else []
    items = [user_info(call, n) for n in names]
    size = max(1, _int(call.params.get("limit"), DEFAULT_PAGE_SIZE))
    return envelope(len(items), 0, size, call.url) | {"items": items[:size]}
