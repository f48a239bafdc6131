"""Shipping labels as PDFs, read back with pypdf as a person or a program would read them."""

import io
from datetime import UTC, datetime

import pypdf
import pytest
from pypdf.generic import ContentStream
from reportlab.graphics.barcode.code128 import _patterns

from fulfilment.labels import Label, Party, address_lines, party, render

STOP = "BcCaAaB"  # 2 3 3 1 1 1 2 modules, bar first
WHEN = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)


def label(**changes) -> Label:
    fields = {
        "tracking_number": "FP00010000017",
        "provider": "Fulfil Post",
        "sender": Party("Main warehouse", ("1 Dock Road", "Bergen 5003")),
        "recipient": Party("Ada Lovelace", ("12 St James's Square", "London SW1Y 4JH", "GB")),
        "is_bulky": False,
        "fulfillment_number": "F-0123456789AB",
        "sale_id": "SO-1001",
        "date_created": WHEN,
    }
    return Label(**(fields | changes))


def text_of(pdf: bytes) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return reader.pages[0].extract_text().splitlines()


def test_a_label_is_one_4_by_6_inch_page_with_everything_a_carrier_needs():
    pdf = render(label())

    assert pdf.startswith(b"%PDF-")
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    assert (float(page.mediabox.width), float(page.mediabox.height)) == (288.0, 432.0)
    lines = text_of(pdf)
    assert lines[0] == "Fulfil Post"
    assert lines[lines.index("FROM") + 1 :][:3] == ["Main warehouse", "1 Dock Road", "Bergen 5003"]
    assert lines[lines.index("TO") + 1 :][:4] == [
        "Ada Lovelace",
        "12 St James's Square",
        "London SW1Y 4JH",
        "GB",
    ]
    assert "FP00010000017" in lines, "the tracking number as text, under its barcode"
    assert "Fulfillment F-0123456789AB Sale SO-1001" in lines
    assert "Created 2026-03-04 05:06 UTC" in lines
    assert "BULKY" not in lines and "CANCELED - DO NOT SHIP" not in lines


def scanned(pdf: bytes) -> str:
    """The text of the page's Code 128 barcode, read as a scanner does: from the widths of
    its bars and the spaces between them, checksum checked."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    operations = ContentStream(reader.pages[0].get_contents(), reader).operations
    rects = [[float(v) for v in args] for args, op in operations if op == b"re"]
    tallest = max(h for _, _, _, h in rects)
    bars = sorted((x, w) for x, _, w, h in rects if h == tallest)
    module = min(w for _, w in bars)
    widths: list[int] = []
    for (x, w), (next_x, _) in zip(bars, [*bars[1:], (None, None)], strict=True):
        widths.append(round(w / module))
        if next_x is not None:
            widths.append(round((next_x - x - w) / module))
    pattern = "".join(
        chr((ord("A") if i % 2 == 0 else ord("a")) + n - 1) for i, n in enumerate(widths)
    )
    value_of = {p: v for v, p in _patterns.items() if isinstance(v, int)}
    symbols = [value_of[pattern[i : i + 6]] for i in range(0, len(pattern) - 7, 6)]
    assert len(pattern) % 6 == 1 and pattern[-7:] == STOP
    *data, check = symbols
    assert check == (data[0] + sum(i * v for i, v in enumerate(data[1:], 1))) % 103
    text, code_set = "", {104: "B", 105: "C"}[data[0]]
    for value in data[1:]:
        if (code_set, value) in (("B", 99), ("C", 100)):  # code C, code B
            code_set = "C" if value == 99 else "B"
        else:
            text += f"{value:02d}" if code_set == "C" else chr(value + 32)
    return text


@pytest.mark.parametrize("number", ["FP00010000017", "FF00020000035", "FP99999999992"])
def test_the_barcode_scans_as_the_tracking_number(number):
    assert scanned(render(label(tracking_number=number))) == number
    assert scanned(render(label(tracking_number=number, is_bulky=True, canceled=True))) == number


def test_bulky_and_canceled_are_marked():
    lines = text_of(render(label(is_bulky=True, canceled=True)))

    assert "BULKY" in lines
    assert "CANCELED - DO NOT SHIP" in lines


def test_a_sale_without_an_address_says_so():
    lines = text_of(render(label(recipient=None)))

    assert lines[lines.index("TO") + 1] == "No shipping address is recorded for this sale."


def test_a_long_address_is_cut_before_the_barcode():
    long = Party("Ada", tuple(f"Line {i} " + "x" * 80 for i in range(40)))

    lines = text_of(render(label(recipient=long)))

    assert any(line.endswith("...") for line in lines)
    assert "FP00010000017" in lines, "the tracking number still prints"
    assert len([line for line in lines if line.startswith("Line ")]) < 20


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (
            {
                "companyName": "Company A",
                "contactName": "Mr Smith",
                "address1": "Unit 2, Corporate Tower",
                "address2": "1 Main Street",
                "suburb": "Springfield",
                "city": "Metropolis",
                "state": {"code": "QLD", "name": "Queensland"},
                "postcode": "4000",
                "country": {"code": "AU", "name": "Australia"},
                "phone": "07 5512 3456",
                "email": "info@company.com",
            },
            (
                "Company A",
                "Unit 2, Corporate Tower",
                "1 Main Street",
                "Springfield",
                "Metropolis, QLD 4000",
                "Australia",
                "07 5512 3456",
                "info@company.com",
            ),
        ),
        ({"city": "Oslo", "country": "NO"}, ("Oslo", "NO")),
        (
            {
                "name": "Ada Lovelace",
                "company": "Engines Ltd",
                "lines": ["Unit 2", "1 Main Street"],
                "city": "London",
                "region": "Greater London",
                "postcode": "N1 9GU",
                "country": "GB",
                "phone": "+44 20 7946 0000",
                "email": "ada@example.com",
            },
            (
                "Engines Ltd",
                "Unit 2",
                "1 Main Street",
                "London, Greater London N1 9GU",
                "GB",
                "+44 20 7946 0000",
                "ada@example.com",
            ),
        ),
        (
            {"line1": "  5 Rue   de Rivoli ", "zip": 75001, "city": "Paris", "door": ["A", 3]},
            ("5 Rue de Rivoli", "Paris 75001", "A, 3"),
        ),
        ({"verified": True, "geo": None}, ()),
    ],
)
def test_free_form_addresses_print_in_postal_order(address, expected):
    assert address_lines(address) == expected


def test_the_recipient_is_named_by_the_address_else_the_customer():
    assert party({"name": "Grace", "city": "Oslo"}, "", {"name": "Ada"}).name == "Grace"
    assert party({"city": "Oslo"}, "", {"name": "Ada"}) == Party("Ada", ("Oslo",))
    assert party({"city": "Oslo"}, "", {"first_name": "Ada", "last_name": "L"}).name == "Ada L"
    assert party({"city": "Oslo"}, "SO-1", None).name == "SO-1"
