"""Printable shipping labels: a fulfillment's label data in, the bytes of a one-page PDF out.

Pure (no I/O): the route gathers what fulfilment stored at shipping init and calls `render`.
The page is 4 x 6 inches, the size thermal label printers take, and holds the sender, the
recipient's address, the shipping provider, the tracking number as a Code 128 barcode and as
text, and a BULKY mark when the shipment is.

Addresses are a sale's structured address (`name`, `company`, `lines`, `city`, `region`,
`postcode`, `country`, `phone`, `email`) or a location's free-form JSON object (see
docs/api-limits.md): the usual keys (those of the reference warehouse API's `Address`,
`address1`, `city`, `postcode`, and their common variants) are laid out in postal order and
any other text value follows, so nothing the client sent is lost. Text is set in the PDF
standard fonts, which cover Latin-1: a character outside it prints as a box. Long values
wrap, and a block that does not fit its space ends in an ellipsis rather than running over
the barcode.
"""

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.pagesizes import inch
from reportlab.lib.utils import simpleSplit
from reportlab.pdfgen.canvas import Canvas

PAGE = (4 * inch, 6 * inch)
MARGIN = 0.2 * inch
FONT, BOLD = "Helvetica", "Helvetica-Bold"
ELLIPSIS = "..."

NAME_KEYS = ("name", "contactName", "contact_name")
COMPANY_KEYS = ("companyName", "company_name", "company")
STREET_KEYS = (
    "address1",
    "address_1",
    "address_line1",
    "address_line_1",
    "line1",
    "street",
    "street_address",
    "address2",
    "address_2",
    "address_line2",
    "address_line_2",
    "line2",
    "address3",
    "line3",
    "suburb",
    "district",
)
CITY_KEYS = ("city", "town", "locality")
REGION_KEYS = ("state", "region", "province", "county")
POSTCODE_KEYS = ("postcode", "postal_code", "post_code", "zip", "zip_code", "zipcode")
COUNTRY_KEYS = ("country", "country_code")
LAST_KEYS = ("phone", "email")


@dataclass(frozen=True)
class Party:
    """Who a label names: a name and an address (lines as they will print)."""

    name: str
    address: tuple[str, ...] = ()


@dataclass(frozen=True)
class Label:
    tracking_number: str
    provider: str  # the shipping provider's name, as printed
    sender: Party
    recipient: Party | None  # None: the sale gave no shipping address
    is_bulky: bool
    fulfillment_number: str  # the fulfillment's `fulfillment_id`
    sale_id: str
    date_created: datetime
    canceled: bool = False


def text_of(value: Any) -> str:
    """One printable line of a free-form value: text and numbers as they are, an object by
    its `name` (or `code`), a list joined by commas; empty when there is nothing to print."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping):
        for key in ("name", "code"):
            if (text := text_of(value.get(key))) != "":
                return text
        return ", ".join(t for v in value.values() if (t := text_of(v)))
    if isinstance(value, list):
        return ", ".join(t for v in value if (t := text_of(v)))
    return ""


def _first(address: Mapping[str, Any], keys: Iterable[str], used: set[str]) -> str:
    for key in keys:
        if key in address and (text := text_of(address[key])):
            used.add(key)
            return text
    return ""


def _region_code(value: Any) -> str:
    """A state as a label shows it: its code (`QLD`) rather than its name when it has one."""
    if isinstance(value, Mapping) and (code := text_of(value.get("code"))):
        return code
    return text_of(value)


def address_name(address: Mapping[str, Any] | None, used: set[str] | None = None) -> str:
    """The name an address carries itself: a person's (`name`, `contactName`), else the
    company's (`companyName`); adds the key it used to `used`."""
    used = set() if used is None else used
    return _first(address or {}, NAME_KEYS, used) or _first(address or {}, COMPANY_KEYS, used)


def address_lines(address: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The lines of a free-form address in postal order, its own name left out (see
    `address_name`): street lines, `city, state postcode`, country, phone and email, then any other
    value."""
    if not address:
        return ()
    used: set[str] = set()
    address_name(address, used)
    lines = [company] if (company := _first(address, COMPANY_KEYS, used)) else []
    # a sale's structured address: its street lines, in order, one printed line each
    if isinstance(street := address.get("lines"), list):
        used.add("lines")
        lines += [text for line in street if (text := text_of(line))]
    for key in STREET_KEYS:
        if key in address and (text := text_of(address[key])):
            used.add(key)
            lines.append(text)
    city = _first(address, CITY_KEYS, used)
    region = next((k for k in REGION_KEYS if k in address and text_of(address[k])), None)
    state = _region_code(address[region]) if region else ""
    used |= {region} if region else set()
    postcode = _first(address, POSTCODE_KEYS, used)
    place = ", ".join(p for p in (city, state) if p)
    if place_line := " ".join(p for p in (place, postcode) if p):
        lines.append(place_line)
    if country := _first(address, COUNTRY_KEYS, used):
        lines.append(country)
    lines += [t for k in LAST_KEYS if k in address and (t := text_of(address[k]))]
    others = [k for k in address if k not in used and k not in LAST_KEYS]
    lines += [t for k in others if (t := text_of(address[k]))]
    return tuple(lines)


def party(
    address: Mapping[str, Any] | None, fallback_name: str, customer: Mapping[str, Any] | None = None
) -> Party:
    """Whom an address names: its own name, else the customer's, else `fallback_name`."""
    customer = customer or {}
    name = address_name(address) or text_of(customer.get("name"))
    if not name:
        name = " ".join(
            t
            for k in ("first_name", "firstName", "last_name", "lastName")
            if (t := text_of(customer.get(k)))
        )
    return Party(name or fallback_name, address_lines(address))


class _Page:
    """Text set top-down in boxes of the page, wrapped and cut to fit."""

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self.width = PAGE[0] - 2 * MARGIN

    def block(
        self, lines: Sequence[str], top: float, bottom: float, size: float, font: str = FONT
    ) -> float:
        """Writes `lines` from `top` down, no lower than `bottom`; returns where it stopped."""
        leading = size * 1.2
        wrapped = [w for line in lines for w in simpleSplit(line, font, size, self.width) or [""]]
        room = max(int((top - bottom) // leading), 0)
        if len(wrapped) > room:
            wrapped = wrapped[:room]
            if wrapped:
                wrapped[-1] = self.fit(wrapped[-1] + ELLIPSIS, font, size)
        self.canvas.setFont(font, size)
        y = top - size
        for line in wrapped:
            self.canvas.drawString(MARGIN, y, line)
            y -= leading
        return y + size  # the last line's descent: where the next block may start

    def fit(self, text: str, font: str, size: float, width: float | None = None) -> str:
        """`text`, cut and ended with an ellipsis if it is wider than `width` (the page's)."""
        width = self.width if width is None else width
        while len(text) > len(ELLIPSIS) and self.canvas.stringWidth(text, font, size) > width:
            text = text[: -len(ELLIPSIS) - 1] + ELLIPSIS
        return text

    def rule(self, y: float) -> None:
        self.canvas.setLineWidth(1)
        self.canvas.line(MARGIN, y, PAGE[0] - MARGIN, y)


def _barcode(canvas: Canvas, number: str, y: float, height: float) -> None:
    """The tracking number as Code 128, as wide as the page allows (bars at least 0.75 pt,
    the narrowest most scanners read from a 203 dpi print), centred."""
    width = PAGE[0] - 2 * MARGIN
    probe = Code128(number, barWidth=1, barHeight=height, quiet=True)
    bar = max(0.75, min(2.0, width / probe.width))
    code = Code128(number, barWidth=bar, barHeight=height, quiet=True)
    code.drawOn(canvas, (PAGE[0] - code.width) / 2, y)


def render(label: Label) -> bytes:
    """The label as a one-page PDF."""
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=PAGE, pageCompression=1, invariant=1)
    canvas.setTitle(f"Shipping label {label.tracking_number}")
    canvas.setAuthor("Fulfil")
    canvas.setSubject(f"{label.provider} {label.tracking_number}")
    page = _Page(canvas)
    width, height = PAGE
    top = height - MARGIN

    # provider, and the BULKY mark in a black box at the right
    canvas.setFont(BOLD, 16)
    room = page.width - (80 if label.is_bulky else 0)
    canvas.drawString(MARGIN, top - 16, page.fit(label.provider[:200], BOLD, 16, room))
    if label.is_bulky:
        canvas.setFillColorRGB(0, 0, 0)
        canvas.rect(width - MARGIN - 72, top - 22, 72, 24, stroke=0, fill=1)
        canvas.setFillColorRGB(1, 1, 1)
        canvas.setFont(BOLD, 16)
        canvas.drawCentredString(width - MARGIN - 36, top - 16, "BULKY")
        canvas.setFillColorRGB(0, 0, 0)
    top -= 28
    page.rule(top)

    # sender
    top = page.block(["FROM"], top - 6, top - 16, 7, BOLD)
    top = page.block([label.sender.name, *label.sender.address], top - 2, top - 50, 8)
    page.rule(top - 6)

    # recipient: the largest text of the label, down to the barcode's box
    barcode_top = 2.3 * inch
    top = page.block(["TO"], top - 12, top - 22, 7, BOLD)
    if label.recipient is None:
        message = "No shipping address is recorded for this sale."
        page.block([message], top - 3, barcode_top, 11, BOLD)
    else:
        name = [label.recipient.name] if label.recipient.name else []
        top = page.block(name, top - 3, barcode_top, 13, BOLD)
        page.block(list(label.recipient.address), top - 4, barcode_top + 6, 12)
    page.rule(barcode_top)

    # tracking number as a barcode, and as text below it
    _barcode(canvas, label.tracking_number, 1.0 * inch, 1.1 * inch)
    canvas.setFont(BOLD, 12)
    canvas.drawCentredString(width / 2, 0.75 * inch, label.tracking_number)
    page.rule(0.65 * inch)

    # references
    details = [
        f"Fulfillment {label.fulfillment_number}   Sale {label.sale_id}",
        f"Created {label.date_created.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
    ]
    page.block(details, 0.6 * inch, MARGIN, 7)
    if label.canceled:
        canvas.saveState()
        canvas.setFillColorRGB(0.8, 0, 0)
        canvas.setFont(BOLD, 20)
        canvas.translate(width / 2, height / 2)
        canvas.rotate(35)
        canvas.drawCentredString(0, 0, "CANCELED - DO NOT SHIP")
        canvas.restoreState()
    canvas.showPage()
    canvas.save()
    return out.getvalue()
