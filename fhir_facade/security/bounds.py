"""Bounds on what a request may ask before any work is done: header and query-string size, and
search complexity (parameters, _include/_revinclude, chained depth). The facade itself bounds
bodies (max_body_bytes), Bundle entries (max_bundle_entries), `_count` (max_page_size) and the
values per parameter."""

from __future__ import annotations

from collections.abc import Sequence

from fhir_facade import errors
from fhir_facade.security.settings import SecuritySettings


def _too_long(status: int, msg: str) -> errors.OperationOutcomeError:
    return errors.OperationOutcomeError(status, [errors.Issue("too-long", msg)])


def check_request(
    headers: Sequence[tuple[bytes, bytes]], query: bytes, s: SecuritySettings
) -> None:
    size = sum(len(k) + len(v) + 4 for k, v in headers)
    if size > s.max_header_bytes:
        raise _too_long(431, f"the request headers are larger than {s.max_header_bytes} bytes")
    if len(query) > s.max_query_bytes:
        raise _too_long(414, f"the query string is longer than {s.max_query_bytes} bytes")


def check_search(pairs: Sequence[tuple[str, str]], s: SecuritySettings) -> None:
    if len(pairs) > s.max_query_params:
        raise errors.bad_request(f"more than {s.max_query_params} search parameters")
    includes = sum(1 for k, _ in pairs if k.split(":")[0] in ("_include", "_revinclude"))
    if includes > s.max_includes:
        raise errors.bad_request(f"more than {s.max_includes} _include/_revinclude parameters")
    for key, _ in pairs:
        depth = key.count(".") + key.count("_has:")
        if depth > s.max_chain_depth:
            raise errors.bad_request(
                f"{key}: chains deeper than {s.max_chain_depth} are refused", key
            )
