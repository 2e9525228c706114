"""How the JSON API renders an object: URL info, catalog-brain columns and schema fields.

An item is `url info + brain columns (+ schema fields when complete)`, which is what
`senaite.jsonapi`'s `get_info` builds. Which brain depends on how the object was found: a catalog
search yields that catalog's metadata columns (the sample catalog's `getClientID`, `review_state`
...), while an object reached by UID (a create/update answer, `GET /<type>/<uid>`) is paired with
its `uid_catalog` brain, whose columns are null: that is why `review_state` is `null` in the
recorded create and analysis payloads. Defaults below are the values the recordings show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from simulators.senaite.schemas import CLIENT_TYPES, GENERIC_SCHEMAS, Schema
from simulators.senaite.store import Obj, Store

FAR_FUTURE = "2499-12-31T00:00:00+00:00"
EFFECTIVE = "1000-01-01T00:00:00+00:00"
API_PATH = "@@API/senaite/v1"


def iso(value: datetime | None) -> str | None:
    """ISO-8601 with seconds and a numeric offset, as `DateTime.ISO8601()` writes it."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True, slots=True)
class Context:
    """What rendering needs besides the object: the store and the public origin of the request."""

    store: Store
    origin: str
    patient_extension: bool = True

    @property
    def api_base(self) -> str:
        return f"{self.origin}/{self.store.site}/{API_PATH}"

    def api_url(self, obj: Obj) -> str:
        return f"{self.api_base}/{obj.portal_type.lower().replace(' ', '')}/{obj.uid}"

    def url(self, obj: Obj) -> str:
        return f"{self.origin}{self.store.path(obj)}"

    def ref(self, uid: str | None, empty: Any = None) -> Any:
        """A UIDReferenceField value: `{url, uid, api_url}`, or the field's empty value."""
        obj = self.store.get(uid)
        if obj is None:
            return empty
        return {"url": self.url(obj), "uid": obj.uid, "api_url": self.api_url(obj)}


def url_info(obj: Obj, ctx: Context) -> dict[str, Any]:
    """The keys every item carries, whatever the brain (`get_url_info` + `get_parent_info`)."""
    parent = obj.parent
    info: dict[str, Any] = {
        "uid": obj.uid,
        "url": ctx.url(obj),
        "api_url": ctx.api_url(obj),
        "path": ctx.store.path(obj),
    }
    if parent is not None:
        info |= {
            "parent_id": parent.id,
            "parent_uid": parent.uid,
            "parent_url": ctx.api_url(parent),
            "parent_path": ctx.store.path(parent),
        }
    return info


_NULL_COLUMNS = (
    "Analyst",
    "analysisRequestTemplates",
    "author_name",
    "end",
    "in_response_to",
    "last_comment_date",
    "mime_type",
    "start",
    "sync_uid",
)


def base_columns(obj: Obj) -> dict[str, Any]:
    """Columns shared by the portal and uid catalogs, with the values the uid catalog holds."""
    cols: dict[str, Any] = dict.fromkeys(_NULL_COLUMNS)
    cols |= {
        "author": "admin",
        "created": iso(obj.created),
        "description": obj.description,
        "effective": EFFECTIVE,
        "expires": FAR_FUTURE,
        "id": obj.id,
        "modified": iso(obj.modified),
        "portal_type": obj.portal_type,
        "tags": [],
        "title": obj.title,
        "commentators": None,
        "exclude_from_nav": None,
        "getClientID": None,
        "is_folderish": None,
        "location": None,
        "review_state": None,
        "total_comments": None,
    }
    return cols


def uid_brain(obj: Obj, _ctx: Context) -> dict[str, Any]:
    return base_columns(obj)


def client_of(obj: Obj) -> Obj | None:
    node: Obj | None = obj
    while node is not None and node.portal_type != "Client":
        node = node.parent
    return node


def portal_brain(obj: Obj, _ctx: Context) -> dict[str, Any]:
    """portal_catalog columns (Client, Contact searches: see get-client.json, get-contact.json)."""
    cols = base_columns(obj)
    client = client_of(obj) if obj.portal_type == "Client" else None
    cols |= {
        "commentators": [],
        "total_comments": 0,
        "is_folderish": True,
        "location": "",
        "review_state": obj.review_state,
        "exclude_from_nav": False if obj.portal_type == "Client" else None,
        "getClientID": client.fields.get("ClientID") if client else None,
    }
    return cols


def setup_brain(obj: Obj, ctx: Context) -> dict[str, Any]:
    """senaite_catalog_setup columns (see get-analysis-request-template.json)."""
    category = ctx.store.get(obj.fields.get("Category"))
    return {
        "author": "admin",
        "created": iso(obj.created),
        "description": obj.description,
        "effective": EFFECTIVE,
        "id": obj.id,
        "location": None,
        "modified": iso(obj.modified),
        "portal_type": obj.portal_type,
        "review_state": obj.review_state,
        "state_title": None,
        "tags": [],
        "title": obj.title,
        "sortable_title": obj.title.lower(),
        "allowedRolesAndUsers": ["Authenticated"],
        "getCategoryTitle": category.title if category else None,
        "getCategoryUID": category.uid if category else None,
        "getClientUID": "",
        "getKeyword": obj.fields.get("Keyword"),
    }


def dublin_core(obj: Obj) -> dict[str, Any]:
    """Dublin Core fields every Archetypes object adds to its schema."""
    return {
        "allowDiscussion": None,
        "contributors": None,
        "creation_date": iso(obj.created),
        "creators": ["admin"],
        "effectiveDate": None,
        "expirationDate": None,
        "language": "en",
        "modification_date": iso(obj.modified),
        "rights": None,
        "subject": None,
    }


def schema_values(obj: Obj, schema: Schema, ctx: Context) -> dict[str, Any]:
    """Render stored field values per the schema; unset fields get the recorded empty value."""
    out: dict[str, Any] = {}
    for name, (kind, empty) in schema.items():
        value = obj.fields.get(name)
        if value is None or value == [] or value == "":
            out[name] = empty
        elif kind == "ref":
            out[name] = ctx.ref(value, empty)
        elif kind == "refs":
            out[name] = [ctx.ref(uid, {}) for uid in value]
        elif kind == "date":
            out[name] = iso(value)
        else:
            out[name] = value
    return out


def generic_dict(obj: Obj, ctx: Context) -> dict[str, Any]:
    """Schema fields of set-up and client types (see create-client.json, create-contact.json)."""
    out = dublin_core(obj) | schema_values(obj, GENERIC_SCHEMAS.get(obj.portal_type, {}), ctx)
    if obj.portal_type == "Client":
        out |= {
            "locallyAllowedTypes": list(CLIENT_TYPES),
            "immediatelyAddableTypes": list(CLIENT_TYPES),
        }
    elif obj.portal_type == "Contact":
        names = (
            obj.fields.get("Firstname"),
            obj.fields.get("Middlename"),
            obj.fields.get("Surname"),
        )
        out["Fullname"] = " ".join(n for n in names if n)
    return out
