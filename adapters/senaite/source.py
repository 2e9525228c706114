"""SENAITE as a sync Source: samples modified after the cursor, mapped, in cursor-stamped batches.

The cursor is `<modified>|<uid>` of the last sample handed over; ties on `modified` (which SENAITE
renders to the second) are broken by UID. SENAITE offers a "modified since" search through a
ZPublisher record on the sample catalog's `modified` DateIndex
(`modified.query:record:date=...&modified.range:record=min`). That index holds minutes, so the
catalog sorts by minute and orders samples within one minute arbitrarily. The scan therefore
restarts each page at the first minute it has not finished (keyset paging, which survives samples
being modified mid-scan), and hands samples over only once their minute is complete, sorted by
(modified, uid) -- so a cursor never passes a sample that has yet to come.

Each sample is mapped with its analyses, fetched for a group of samples in one search (by
`getAncestorsUIDs`, see `_with_analyses`) rather than one search per sample.

Known limit: a sample modified again within the same second as the cursor, with a smaller UID
than the cursor's, is only seen at its next modification.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.base import Batch, Rejected
from adapters.senaite.client import SenaiteClient, SenaiteError
from adapters.senaite.loinc import LoincTable, load_table
from adapters.senaite.mapper import MappedSample, map_raw_sample
from adapters.senaite.payloads import Deviations

log = logging.getLogger(__name__)

SAMPLE_QUERY = {
    "catalog": "senaite_catalog_sample",
    "complete": "yes",
    "sort_on": "modified",
    "sort_order": "ascending",
}
ANALYSIS_QUERY = {"catalog": "senaite_catalog_analysis", "complete": "yes"}


@dataclass(frozen=True, order=True, slots=True)
class CursorKey:
    """A position in (modified, uid) order."""

    modified: datetime
    uid: str

    def encode(self) -> str:
        return f"{self.modified.astimezone(UTC).isoformat()}|{self.uid}"

    @classmethod
    def decode(cls, text: str) -> CursorKey:
        when, sep, uid = text.rpartition("|")
        try:
            modified = datetime.fromisoformat(when)
        except ValueError:
            modified = None
        if not sep or not uid or modified is None or modified.tzinfo is None:
            raise ValueError(f"not a SENAITE cursor: {text!r}")
        return cls(modified, uid)

    @classmethod
    def of(cls, item: dict[str, Any]) -> CursorKey | None:
        uid, modified = item.get("uid"), item.get("modified")
        if not isinstance(uid, str) or not uid or not isinstance(modified, str):
            return None
        try:
            when = datetime.fromisoformat(modified.replace("Z", "+00:00"))
        except ValueError:
            return None
        return cls(when if when.tzinfo else when.replace(tzinfo=UTC), uid)


def minute(value: datetime) -> datetime:
    """The resolution of Zope's DateIndex."""
    return value.astimezone(UTC).replace(second=0, microsecond=0)


class SenaiteSource:
    """Pulls samples (with their analyses) from SENAITE and maps them to FHIR."""

    name = "senaite"

    def __init__(
        self,
        client: SenaiteClient,
        *,
        base_url: str,
        table: LoincTable | None = None,
        check_auth: bool = True,
        group_size: int = 50,
    ) -> None:
        self.client = client
        self.base_url = base_url
        self.table = table or load_table()
        self.check_auth = check_auth
        self.group_size = max(1, group_size)  # samples whose analyses are fetched together
        self.deviations = Deviations()

    def pull(self, cursor: str | None, *, batch_size: int = 200) -> Iterator[Batch]:
        """Changes after `cursor`, oldest first, in batches of at most `batch_size` resources."""
        since = CursorKey.decode(cursor) if cursor else None
        if self.check_auth:
            self.client.check_auth()
        batch = Batch(cursor=cursor)
        for key, item, analyses in self._with_analyses(self._changed(since)):
            mapped = self._map(item, analyses) if key else self._unordered(item)
            done = key.encode() if key else batch.cursor
            if batch.resources and len(batch.resources) + len(mapped.resources) > batch_size:
                yield batch
                batch = Batch(cursor=batch.cursor)
            resources = mapped.resources
            while len(batch.resources) + len(resources) > batch_size:
                room = batch_size - len(batch.resources)
                batch.resources.extend(resources[:room])
                resources = resources[room:]
                yield batch  # the sample is not complete yet: the cursor stays before it
                batch = Batch(cursor=batch.cursor)
            batch.resources.extend(resources)
            batch.rejected.extend(mapped.rejected)
            batch.cursor = done
        if batch.resources or batch.rejected or batch.cursor != cursor:
            yield batch

    def _with_analyses(
        self, changed: Iterator[tuple[CursorKey | None, dict[str, Any]]]
    ) -> Iterator[tuple[CursorKey | None, dict[str, Any], list[dict[str, Any]]]]:
        """The samples, each with its analyses, fetched for `group_size` samples at a time:
        `getAncestorsUIDs` is a KeywordIndex, which senaite.jsonapi queries with comma-separated
        values (any of them), and each analysis names its sample as its parent."""
        while group := list(itertools.islice(changed, self.group_size)):
            uids = [str(item["uid"]) for key, item in group if key is not None]
            found: dict[str, list[dict[str, Any]]] = {uid: [] for uid in uids}
            if uids:
                query = {**ANALYSIS_QUERY, "getAncestorsUIDs": ",".join(uids)}
                for analysis in self.client.iter_search("Analysis", query):
                    parent = analysis.get("parent_uid") or analysis.get("getRequestUID")
                    if isinstance(parent, str) and parent in found:
                        found[parent].append(analysis)
                    else:
                        name = str(analysis.get("uid") or analysis.get("id") or "?")
                        self.deviations.note("analysis-of-no-sample-asked-for", name)
            for key, item in group:
                yield key, item, found.get(str(item.get("uid")), []) if key else []

    def _changed(
        self, since: CursorKey | None
    ) -> Iterator[tuple[CursorKey | None, dict[str, Any]]]:
        """Raw samples after `since` in (modified, uid) order; unorderable ones as they come."""
        for key, item in self._scan(since):
            if key is None or since is None or key > since:
                yield key, item

    def _scan(self, since: CursorKey | None) -> Iterator[tuple[CursorKey | None, dict[str, Any]]]:
        floor = minute(since.modified) if since else None
        offset = 0
        pending: list[tuple[CursorKey, dict[str, Any]]] = []
        while True:
            params: dict[str, str | int] = dict(SAMPLE_QUERY)
            if floor is not None:
                params["modified.query:record:date"] = floor.isoformat()
                params["modified.range:record"] = "min"
            page = self.client.search_page("AnalysisRequest", params, b_start=offset)
            for item in page.items:
                key = CursorKey.of(item)
                if key is None:
                    yield None, item
                    continue
                if floor is not None and minute(key.modified) < floor:
                    raise SenaiteError("SENAITE ignored the modified range query")
                if pending and minute(key.modified) > minute(pending[-1][0].modified):
                    yield from sorted(pending, key=lambda p: p[0])
                    pending = []
                pending.append((key, item))
            if page.next_start is None:
                yield from sorted(pending, key=lambda p: p[0])
                return
            if pending:  # restart at the unfinished minute, past what was seen of it
                floor, offset = minute(pending[-1][0].modified), len(pending)
            else:
                offset = page.next_start

    def _map(self, item: dict[str, Any], analyses: list[dict[str, Any]]) -> MappedSample:
        sample_id = str(item.get("id") or item.get("uid"))
        try:
            return map_raw_sample(
                item,
                analyses,
                table=self.table,
                source_url=self.base_url,
                deviations=self.deviations,
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.exception("SENAITE sample %s could not be mapped", sample_id)
            return MappedSample(
                rejected=[Rejected(f"AnalysisRequest/{sample_id}", f"mapping failed: {exc}")]
            )

    def _unordered(self, item: dict[str, Any]) -> MappedSample:
        name = item.get("id") or item.get("uid") or "?"
        self.deviations.note("sample-without-uid-or-modified", str(name))
        return MappedSample(
            rejected=[Rejected(f"AnalysisRequest/{name}", "no uid or no valid modified date")]
        )
