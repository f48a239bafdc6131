"""The optional details of a sale: priority, instructions, required dates, money, custom
properties and a structured shipping address (docs/api-guide.md, "Order details"; bounds in
docs/api-limits.md). Validated here so that each error points at the field it is about.

Currencies (ISO 4217) and countries (ISO 3166-1 alpha-2) are lists in code: validating them
never needs the network."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fulfilkit.models import AwareTimestamp, StrictModel, Text
from fulfilkit.properties import (  # noqa: F401  (the bounds are read here by their users)
    MAX_PROPERTY_KEY,
    MAX_PROPERTY_NUMBER,
    MAX_PROPERTY_TEXT,
    properties,
)

# ISO 4217 active codes, plus XXX (no currency) left out on purpose: an amount needs one.
CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD
    EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR
    ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD
    MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR
    PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL
    THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF
    XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL""".split()
)

# ISO 3166-1 alpha-2 officially assigned codes.
COUNTRIES = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK
    DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR
    GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM
    KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP
    MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL
    PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST
    SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG
    VI VN VU WF WS YE YT ZA ZM ZW""".split()
)

Priority = Literal["normal", "urgent"]

MAX_INSTRUCTIONS = 1000
AMOUNT_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,4})?$"

# Custom properties: string keys, scalar values (text, number, boolean).
MAX_SALE_PROPERTIES = 50
MAX_LINE_PROPERTIES = 20
# the sale's properties, as the events write them (orjson)
MAX_SALE_PROPERTIES_BYTES = 8 * 1024
# all lines' properties together, as the events write them (orjson), so that a sale of 500
# lines stays a small event
MAX_LINES_PROPERTIES_BYTES = 16 * 1024

# Address fields
MAX_ADDRESS_LINES = 3
MAX_ADDRESS_TEXT = 200


def _currency(code: str) -> str:
    if code not in CURRENCIES:
        raise ValueError("must be an ISO 4217 currency code in capitals, such as EUR or USD")
    return code


class Money(StrictModel):
    """An amount in a currency; the amount is a decimal number written as a string, so that
    no client or event ever rounds it."""

    amount: Annotated[
        str,
        Field(
            pattern=AMOUNT_PATTERN,
            max_length=20,
            description="Non-negative decimal, at most 15 digits before the point and 4"
            " after: `12.50`.",
            examples=["12.50"],
        ),
    ]
    currency: Annotated[
        str,
        Field(min_length=3, max_length=3, pattern="^[A-Z]{3}$", examples=["EUR"]),
        AfterValidator(_currency),
    ]


class RequiredDates(StrictModel):
    ship_by: AwareTimestamp | None = None
    deliver_by: AwareTimestamp | None = None

    @field_validator("deliver_by")
    @classmethod
    def _not_before_ship_by(cls, value: datetime | None, info: ValidationInfo) -> Any:
        ship_by = info.data.get("ship_by")
        if value is not None and ship_by is not None and value < ship_by:
            raise ValueError("must not be before ship_by")
        return value


SaleProperties = properties(MAX_SALE_PROPERTIES, MAX_SALE_PROPERTIES_BYTES)
LineProperties = properties(MAX_LINE_PROPERTIES)


AddressText = Annotated[Text, Field(min_length=1, max_length=MAX_ADDRESS_TEXT)]


def _country(code: str) -> str:
    upper = code.upper()
    if upper not in COUNTRIES:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code, such as FR or US")
    return upper


_PHONE = r"^\+?[0-9][0-9 ().\-]{2,31}$"
_EMAIL = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"

# The free-form keys an address used to be sent with, by the field each maps to
# (docs/api-guide.md, "Order details"). Any other key is refused.
LEGACY_KEYS: dict[str, tuple[str, ...]] = {
    "name": ("contact_name", "contactName"),
    "company": ("company_name", "companyName"),
    "city": ("town", "locality"),
    "region": ("state", "province", "county"),
    "postcode": ("postal_code", "post_code", "zip", "zip_code", "zipcode"),
    "country": ("country_code",),
    "line1": ("address1", "address_1", "address_line1", "address_line_1", "street"),
    "line2": ("address2", "address_2", "address_line2", "address_line_2"),
    "line3": ("address3", "address_3", "address_line3", "address_line_3"),
}


# each key an address may be sent with, by the field it fills
_FIELD_OF_KEY = {key: field for field, legacy in LEGACY_KEYS.items() for key in (field, *legacy)}
_STREET = frozenset({"line1", "line2", "line3"})


def _named(field: str, description: str = "", **extra: Any) -> Any:
    """The field, also read from its legacy keys (which the description lists)."""
    legacy = LEGACY_KEYS[field]
    return Field(
        validation_alias=AliasChoices(field, *legacy),
        description=f"{description}Also read from {', '.join(legacy)}.",
        **extra,
    )


class Address(StrictModel):
    """A postal address. `lines` are the street lines in order; `country` is an ISO 3166-1
    alpha-2 code (`fr` is taken as `FR`). Legacy free-form keys are mapped (`zip` to
    `postcode`, `line1`-`line3` to `lines`, ...); any other key is refused."""

    name: Annotated[AddressText | None, _named("name")] = None
    company: Annotated[AddressText | None, _named("company")] = None
    lines: Annotated[
        list[AddressText] | None, Field(min_length=1, max_length=MAX_ADDRESS_LINES)
    ] = None
    city: Annotated[AddressText | None, _named("city")] = None
    region: Annotated[AddressText | None, _named("region")] = None
    postcode: Annotated[
        Annotated[Text, Field(min_length=1, max_length=32)] | None,
        _named("postcode"),
    ] = None
    country: Annotated[
        Annotated[str, Field(min_length=2, max_length=2, pattern="^[A-Za-z]{2}$")] | None,
        AfterValidator(lambda c: None if c is None else _country(c)),
        _named("country"),
    ] = None
    phone: Annotated[str, Field(max_length=32, pattern=_PHONE)] | None = None
    email: Annotated[str, Field(max_length=254, pattern=_EMAIL)] | None = None
    # legacy single street lines, folded into `lines`
    line1: Annotated[
        AddressText | None,
        _named("line1", "The old form of lines[0], answered in `lines`. ", exclude=True),
    ] = None
    line2: Annotated[
        AddressText | None,
        _named("line2", "The old form of lines[1], answered in `lines`. ", exclude=True),
    ] = None
    line3: Annotated[
        AddressText | None,
        _named("line3", "The old form of lines[2], answered in `lines`. ", exclude=True),
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _one_key_each(cls, given: Any) -> Any:
        if isinstance(given, dict):
            seen: dict[str, str] = {}
            for key in given:
                if (field := _FIELD_OF_KEY.get(key)) is None:
                    continue
                if field in seen:
                    raise ValueError(f"{seen[field]} and {key} are the same field: send one")
                seen[field] = key
            if "lines" in given and not _STREET.isdisjoint(seen):
                raise ValueError("send the street as lines or as line1-line3, not both")
        return given

    @model_validator(mode="after")
    def _fold_lines(self) -> "Address":
        legacy = [line for line in (self.line1, self.line2, self.line3) if line]
        if legacy:
            self.lines = legacy
        self.line1 = self.line2 = self.line3 = None
        return self
