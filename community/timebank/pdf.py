"""The printable 志愿服务证明 as a PDF (reportlab).

Chinese is set in reportlab's built-in CID font STSong-Light: the PDF names the font and the
reader supplies the glyphs, so no font file ships with us and the file stays small. Latin
text (the number, dates, hours) is set in Helvetica. Rendering is CPU work (~10 ms a page):
call it with ``asyncio.to_thread`` from an async handler.
"""

from __future__ import annotations

import io
import threading
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

FONT = "STSong-Light"
LATIN = "Helvetica"
_lock = threading.Lock()
_registered = False


def _register_font() -> None:
    global _registered
    with _lock:
        if not _registered:
            pdfmetrics.registerFont(UnicodeCIDFont(FONT))
            _registered = True


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=FONT, fontSize=12, leading=20, wordWrap="CJK")
    return {
        "title": ParagraphStyle(
            "title", parent=base, fontSize=24, leading=32, alignment=TA_CENTER, spaceAfter=4 * mm
        ),
        "number": ParagraphStyle("number", parent=base, fontSize=10, alignment=TA_RIGHT),
        "body": ParagraphStyle("intro", parent=base, firstLineIndent=24, spaceAfter=4 * mm),
        "cell": ParagraphStyle("cell", parent=base, fontSize=10, leading=14),
        "right": ParagraphStyle("right", parent=base, alignment=TA_RIGHT),
        "small": ParagraphStyle("small", parent=base, fontSize=9, leading=13),
    }


def _latin(text: str) -> str:
    """Markup that sets ASCII runs (number, dates) in Helvetica inside a CJK paragraph."""
    return f'<font name="{LATIN}">{escape(text)}</font>'


def _table(content: dict[str, Any], styles: dict[str, ParagraphStyle]) -> Table:
    head = [Paragraph(escape(c), styles["cell"]) for c in content["columns"]]
    rows: list[list[Any]] = [head]
    for n, record in enumerate(content["records"], start=1):
        rows.append(
            [
                Paragraph(_latin(str(n)), styles["cell"]),
                Paragraph(_latin(record["date"]), styles["cell"]),
                Paragraph(escape(record["title"]), styles["cell"]),
                Paragraph(escape(record["org"]), styles["cell"]),
                Paragraph(_latin(record["hours"]), styles["cell"]),
            ]
        )
    table = Table(
        rows, colWidths=[12 * mm, 26 * mm, 64 * mm, 50 * mm, 18 * mm], repeatRows=1, hAlign="CENTER"
    )
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#EEEEEE")),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table


def render_certificate_pdf(content: dict[str, Any]) -> bytes:
    """The certificate described by ``certificate_content`` as PDF bytes (A4, pages numbered)."""
    _register_font()
    styles = _styles()
    number = str(content["number"])
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=20 * mm,
        bottomMargin=20 * mm,
        title=f"{content['title']} {number}",
        subject=number,
        author=str(content["issuer"]),
        creator="Linli",
    )
    story: list[Any] = [
        Paragraph(escape(content["title"]), styles["title"]),
        Paragraph(_latin(number), styles["number"]),
        Spacer(1, 4 * mm),
        Paragraph(escape(content["intro"]), styles["body"]),
        _table(content, styles),
        Spacer(1, 4 * mm),
        Paragraph(escape(content["total_line"]), styles["body"]),
        Spacer(1, 8 * mm),
        Paragraph(escape(content["issuer_line"]), styles["right"]),
        Paragraph(escape(content["community_line"]), styles["right"]),
        Paragraph(escape(content["issued_on"]), styles["right"]),
        Paragraph(escape(content["seal"]), styles["right"]),
        Spacer(1, 10 * mm),
        Paragraph(escape(content["statement"]), styles["small"]),
        Paragraph(escape(content["basis"]), styles["small"]),
    ]

    def footer(canvas: Canvas, _doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(LATIN, 8)
        canvas.drawCentredString(A4[0] / 2, 10 * mm, f"{number}  -  {canvas.getPageNumber()}")
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
