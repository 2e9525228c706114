"""Prefetch templates: checked when a service is declared, filled in when a hook arrives.

#prefetch-tokens: tokens sit between `{{` and `}}` and name either a root-level primitive context
field the hook marks as a prefetch token (`{{context.patientId}}`), or one of the user tokens
(`{{userPractitionerId}}`...), which resolve from context.userId when it has that type.
#prefetch-query-restrictions: templates keep to the RECOMMENDED subset (instance read, type-level
search on reference, token and date parameters with eq/lt/gt/ge/le, `_count`, `_sort`), so any
client can satisfy them. A template outside those rules fails at start-up, not at call time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

from cds_hooks.hooks import HOOKS
from fhir_facade.search.parameters import params_for

TOKEN = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}
_RESULT_PARAMS = {"_count", "_sort"}
_DATE_PREFIXES = ("eq", "lt", "gt", "ge", "le")
_TYPE = re.compile(r"[A-Z][A-Za-z]+")


class TemplateError(ValueError):
    """A prefetch template outside what CDS Hooks 2.0 allows or recommends."""


def check_template(hook: str, template: str) -> None:
    """Raise TemplateError unless the template uses allowed tokens and the recommended subset."""
    spec = HOOKS.get(hook)
    allowed = spec.token_fields if spec else frozenset()
    for token in TOKEN.findall(template):
        if token in USER_TOKENS:
            continue
        name = token.removeprefix("context.")
        if not token.startswith("context.") or name not in allowed:
            raise TemplateError(f"{{{{{token}}}}} is not a prefetch token of the {hook} hook")
    if "{{" in TOKEN.sub("", template) or "}}" in TOKEN.sub("", template):
        raise TemplateError(f"unbalanced token delimiters in {template!r}")
    resource_type, sep, query = TOKEN.sub("x", template).partition("?")
    if not sep:
        rtype, slash, rid = resource_type.partition("/")
        if not slash or not _TYPE.fullmatch(rtype) or not rid or "/" in rid:
            raise TemplateError(f"{template!r} is neither Type/id nor Type?query")
        return
    if not _TYPE.fullmatch(resource_type):
        raise TemplateError(f"{template!r} does not start with a resource type")
    for key, value in parse_qsl(query, keep_blank_values=True):
        _check_param(resource_type, key, value)


def _check_param(resource_type: str, key: str, value: str) -> None:
    name, _, modifier = key.partition(":")
    if name in _RESULT_PARAMS:
        if modifier:
            raise TemplateError(f"{key} takes no modifier")
        return
    param = params_for(resource_type).get(name)
    kind = "token" if name == "_id" else param.type if param else None
    if kind == "reference" and (not modifier or modifier[:1].isupper()):
        return
    if kind == "token" and modifier in ("", "in"):
        return
    if kind == "date" and not modifier and (value[:2] in _DATE_PREFIXES or value[:1].isdigit()):
        return
    raise TemplateError(f"{resource_type}?{key}= is outside the recommended prefetch subset")


def render(template: str, context: Mapping[str, Any]) -> str | None:
    """The query with its tokens filled in (URL-encoded), or None when a token has no value in
    this call (e.g. {{userPractitionerId}} when the user is a PractitionerRole): the key then
    cannot be fetched and counts as having no data, as a client would omit it."""
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        token = match.group(1)
        if token in USER_TOKENS:
            rtype, _, rid = str(context.get("userId") or "").partition("/")
            found: Any = rid if rtype == USER_TOKENS[token] and rid else None
        else:
            found = context.get(token.removeprefix("context."))
        if not isinstance(found, str | int) or isinstance(found, bool) or found == "":
            missing = True
            return ""
        return quote(str(found), safe="")

    out = TOKEN.sub(value, template)
    return None if missing else out
