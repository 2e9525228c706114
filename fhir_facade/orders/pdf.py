"""A minimal PDF (1.4) writer for plain-text reports: no PDF library ships with the project.

Why hand-written: a report document needs text lines on A4 pages, nothing more, and a dozen
lines of PDF syntax do that with exact, reproducible bytes (the same report gives the same file).
Text is Latin-1 in Helvetica (a standard font, nothing embedded); other characters become '?'.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

_WIDTH, _HEIGHT, _MARGIN, _LEADING, _PER_PAGE = 595, 842, 56, 14, 50


def _escape(line: str) -> str:
    text = line.encode("latin-1", "replace").decode("latin-1")
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def render(lines: Iterable[str], *, wrap: int = 90) -> bytes:
    """A PDF of the lines (wrapped at `wrap` characters), as many pages as needed."""
    wrapped = [part for line in lines for part in (textwrap.wrap(line, wrap) or [""])]
    pages = [wrapped[i : i + _PER_PAGE] for i in range(0, max(len(wrapped), 1), _PER_PAGE)]
    objects: list[bytes] = [b"", b""]  # 1: catalog, 2: pages (filled in below)
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    kids = []
    for page in pages:
        ops = [f"BT /F1 10 Tf {_LEADING} TL {_MARGIN} {_HEIGHT - _MARGIN} Td"]
        ops += [f"({_escape(line)}) '" for line in page]
        stream = "\n".join([*ops, "ET"]).encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        content_no = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>"
            % (_WIDTH, _HEIGHT, content_no)
        )
        kids.append(len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    refs = " ".join(f"{k} 0 R" for k in kids).encode()
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
