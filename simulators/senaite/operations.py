"""The JSON API operations behind the routes: read, search, create, update, delete, users.

Each returns the answer's dict without `_runtime` (the HTTP layer adds it, as plone.jsonapi.core's
`runtime` decorator does). Errors are raised as ApiError (status + message) or WorkflowError
(which SENAITE lets through as `success: false` with HTTP 200).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from starlette.datastructures import URL, QueryParams

from simulators.senaite.catalog import Query, envelope, matches, parse_query, sort_key
from simulators.senaite.content import ApiError, find_object, update
from simulators.senaite.creation import create
from simulators.senaite.render import brain, catalog_of, render
from simulators.senaite.schemas import INDEXES
from simulators.senaite.shapes import Context
from simulators.senaite.store import Obj
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
    types = {o.portal_type for o in call.ctx.store.objects()}
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
    found: list[tuple[Obj, dict[str, Any]]] = []
    for obj in call.ctx.store.objects():
        if types and obj.portal_type not in types:
            continue
        if catalog and catalog_of(obj) != catalog:
            continue
        if not types and not catalog and catalog_of(obj) != "portal_catalog":
            continue
        cols = brain(obj, call.ctx)
        if matches(obj, query, call.ctx, cols):
            found.append((obj, cols))
    return _sorted(call, query, found)


def _sorted(call: Call, query: Query, found: list[tuple[Obj, dict[str, Any]]]) -> list[Obj]:
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
