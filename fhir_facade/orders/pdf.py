"""PDF rendering of plain-text reports with fpdf2.

A report document is text lines on A4 pages: fpdf2 does the layout (wrapping by measured
width, page breaks, compressed content streams, a standards-conformant file structure) and
lets the link back to the facade be a real URI annotation, not just printed text. Output is
reproducible: the creation date is fixed, so the same report gives the same bytes (the EHR
upload de-duplicates by file name, and tests can compare files). Core fonts are Latin-1:
other characters become '?'.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from fpdf import FPDF

_FONT, _SIZE, _LEADING, _MARGIN_MM = "helvetica", 10, 5.0, 20
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def render(lines: Iterable[str], *, title: str = "", link: str | None = None) -> bytes:
    """A PDF of the lines, wrapped to the page width, as many pages as needed. A line holding
    `link` becomes a clickable URI; `title` goes into the document information."""
    doc = FPDF(format="A4", unit="mm")
    doc.set_creation_date(_EPOCH)
    doc.set_margins(_MARGIN_MM, _MARGIN_MM, _MARGIN_MM)
    doc.set_auto_page_break(auto=True, margin=_MARGIN_MM)
    doc.set_title(_latin1(title))
    doc.set_creator("CDSS hub")
    doc.add_page()
    doc.set_font(_FONT, size=_SIZE)
    for line in lines:
        if not line:
            doc.ln(_LEADING)
            continue
        doc.multi_cell(
            0,
            _LEADING,
            _latin1(line),
            new_x="LMARGIN",
            new_y="NEXT",
            link=link if link and link in line else "",
        )
    return bytes(doc.output())
