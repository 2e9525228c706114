"""Patient documents through the standard API (DocumentRestController / DocumentService).

  POST /patient/:pid/document?path=/Categories/Lab Report[&eid=N]  multipart field `document`
       -> 200 `true`; an unknown category path or an empty file -> 404 `null`
  GET  /patient/:pid/document?path=...  -> 200 [{filename, id, mimetype, docdate}];
       none -> 404 `null`
  GET  /patient/:pid/document/:did      -> the file, with its mimetype; unknown -> 400

`path` walks the `categories` tree from its second segment: each category must be a child of
the previous one. OpenEMR compares `replace(LOWER(name),' ','')` with the segment minus `_`;
the simulator also lower-cases the segment and drops its spaces, so `Lab Report` and
`lab_report` both work (OpenEMR needs the latter).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from simulators.openemr.api_common import API_PREFIX, bare
from simulators.openemr.security import Guard
from simulators.openemr.store import OpenEMRStore


def _norm(name: str) -> str:
    return name.lower().replace(" ", "").replace("_", "")


def category_id(store: OpenEMRStore, path: str) -> int | None:
    """The id of the last category of `path`, or None when the path is not a chain."""
    parts = [p for p in path.split("/")[1:] if p]  # OpenEMR unsets the first segment
    by_name: dict[str, list[dict[str, int]]] = {}
    for row in store.rows("categories"):
        by_name.setdefault(_norm(str(row["name"])), []).append(row)
    parent: int | None = None
    if not parts:
        return None
    for part in parts:
        candidates = by_name.get(_norm(part), [])
        match = [c for c in candidates if parent is None or c["parent"] == parent]
        if not match:
            return None
        parent = int(match[0]["id"])
    return parent


def documents_router(store: OpenEMRStore, guard: Guard) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)

    @router.post("/patient/{pid}/document")
    async def upload(pid: str, request: Request, path: str = "", eid: str = "") -> JSONResponse:
        guard.api(request, "document", write=True)
        form = await request.form()
        upload = form.get("document")
        category = category_id(store, path)
        patient = store.patient_by_pid(pid)
        if not isinstance(upload, UploadFile) or category is None or patient is None:
            return bare(False)
        content = await upload.read()
        if not content:
            return bare(False)
        name = upload.filename or "document"
        row = {
            "foreign_id": patient["pid"],
            "url": f"file:///var/www/localhost/htdocs/openemr/sites/default/documents/{pid}/{name}",
            "name": name,
            "mimetype": upload.content_type or "application/octet-stream",
            "docdate": store.now()[:10],
            "date": store.now(),
            "encounter_id": int(eid) if eid.isdigit() else 0,
            "category_id": category,
            "deleted": 0,
            "_content": content,
        }
        store.insert("documents", row)
        return bare(True)

    @router.get("/patient/{pid}/document")
    def list_documents(pid: str, request: Request, path: str = "") -> JSONResponse:
        guard.api(request, "document", write=False)
        category = category_id(store, path)
        rows = [
            r
            for r in store.rows("documents")
            if str(r["foreign_id"]) == pid and r["category_id"] == category and not r["deleted"]
        ]
        listed = [
            {
                "filename": r["name"],
                "id": str(r["id"]),
                "mimetype": r["mimetype"],
                "docdate": r["docdate"],
            }
            for r in rows
        ]
        return bare(listed if category is not None else False)

    @router.get("/patient/{pid}/document/{did}")
    def download(pid: str, did: str, request: Request) -> Response:
        guard.api(request, "document", write=False)
        row = store.table("documents").get(did)
        if row is None or str(row["foreign_id"]) != pid or row["deleted"]:
            return Response(status_code=400)
        headers = {"Content-Disposition": f"attachment; filename={row['name']}"}
        return Response(row["_content"], media_type=str(row["mimetype"]), headers=headers)

    return router
