"""The report PDF (fpdf2): text read back with pypdf, wrapping, pages, the link annotation,
Latin-1 replacement and reproducible bytes."""

from __future__ import annotations

import io

from pypdf import PdfReader

from fhir_facade.orders import pdf

LINK = "https://cdss.example/fhir/DiagnosticReport/7/_history/2"


def _text(body: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(body))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


def test_pdf_reads_back_with_link_and_wrapping() -> None:
    long = "word " * 60
    body = pdf.render(["Title line", "", long, LINK, "Naïve café ☃"], title="R", link=LINK)
    reader, text = _text(body)
    assert body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")
    assert "Title line" in text and LINK in text and "Naïve café ?" in text
    assert text.count("word") == 60 and "\n" in text.split("Title line")[1]  # wrapped
    annots = [a.get_object()["/A"]["/URI"] for a in reader.pages[0]["/Annots"]]
    assert annots == [LINK]
    assert reader.metadata is not None and reader.metadata.title == "R"


def test_pdf_paginates_and_is_reproducible() -> None:
    lines = [f"line {n}" for n in range(200)]
    body = pdf.render(lines)
    reader, text = _text(body)
    assert len(reader.pages) > 2
    assert "line 0" in text and "line 199" in text
    assert pdf.render(lines) == body
    assert pdf.render([*lines, "one more"]) != body
    assert "/Annots" not in reader.pages[0]
