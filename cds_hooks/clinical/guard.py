"""A safety net so that a clinical rule never breaks the hook that calls it.

Why: the rules read untrusted, sometimes malformed FHIR JSON inside a CDS Hooks call. The
readers in ``fhir_read`` already return None for what they cannot read; this decorator is the
last line: an unexpected error is logged with its traceback and the rule answers with its
"nothing to say" value (None or an empty list) instead of failing the whole hook.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast

P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger(__name__)


def never_raises(
    fallback: Callable[[], object], *, name: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Wrap a rule so that any exception is logged and ``fallback()`` is returned.

    ``fallback`` must build a value of the rule's return type (``lambda: None``, ``list``).
    ``name``: the rule's name in the log when not the function's own (a variant of a rule, e.g.
    one working on data prepared once per call, logs as the rule it is).
    """

    def decorate(rule: Callable[P, R]) -> Callable[P, R]:
        logged = name or rule.__name__

        @functools.wraps(rule)
        def safe(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return rule(*args, **kwargs)
            except Exception:
                log.exception("clinical rule %s failed on its input; no finding", logged)
                return cast(R, fallback())

        return safe

    return decorate
