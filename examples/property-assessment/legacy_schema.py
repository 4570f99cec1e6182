"""Schema and fake-data vocabulary of the simulated legacy property-assessment database.

The tables mimic what a county's SQL Server CAMA (computer-assisted mass appraisal) system
typically looks like after twenty years of maintenance: PascalCase names, no foreign keys (the
data has orphans), dates stored as text in mixed formats, CHAR-style space-padded parcel numbers
and free-text code columns. Only the ``LastModified`` columns are indexed besides the primary
keys: they are what an incremental sync watermarks on.

The second half of the module is the shared "legacy data entry clerk" used by ``generate.py``
and ``mutate.py``: :class:`LegacyFaker` produces rows as messy as the real thing (Benton County,
WA flavoured), deterministically from the ``random.Random`` it is given.

Note: this module binds the name ``property`` to the Property table, as the recipe's code reads
naturally that way; it therefore never uses the ``@property`` decorator.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import Column, Connection, DateTime, Integer, MetaData, Numeric, String, Table

__all__ = [
    "PARCEL_NUMBER_WIDTH",
    "PROPERTY_ID_BASE",
    "TABLES",
    "LegacyFaker",
    "ParcelFacts",
    "insert_rows",
    "metadata",
    "property",
    "property_owner",
    "property_value",
    "structure",
]

# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------

#: ParcelNumber is a CHAR(20) in the legacy system: values are right-padded with spaces.
PARCEL_NUMBER_WIDTH = 20

metadata = MetaData()

property = Table(
    "Property",
    metadata,
    Column("PropertyID", Integer, primary_key=True, autoincrement=False),
    Column("ParcelNumber", String(PARCEL_NUMBER_WIDTH), nullable=False),
    Column("SitusAddress", String(100)),
    Column("City", String(50)),
    Column("State", String(2)),
    Column("ZipCode", String(10)),
    Column("LegalDescription", String(255)),
    Column("Acreage", Numeric(10, 4, asdecimal=True)),
    Column("YearBuilt", Integer, nullable=True),
    Column("PropertyClass", String(3)),
    Column("LastModified", DateTime, nullable=False, index=True),
)

property_owner = Table(
    "PropertyOwner",
    metadata,
    Column("OwnerID", Integer, primary_key=True, autoincrement=False),
    # Deliberately not a ForeignKey: the legacy data holds owners of parcels long gone.
    Column("PropertyID", Integer, nullable=False),
    Column("OwnerName", String(100)),
    Column("OwnerType", String(1)),
    Column("OwnershipPercentage", Numeric(5, 2, asdecimal=True)),
    Column("StartDate", String(10)),
    Column("EndDate", String(10), nullable=True),
    Column("MailingAddress", String(150)),
    Column("Phone", String(20)),
    Column("LastModified", DateTime, nullable=False, index=True),
)

property_value = Table(
    "PropertyValue",
    metadata,
    Column("ValueID", Integer, primary_key=True, autoincrement=False),
    Column("PropertyID", Integer, nullable=False),
    Column("TaxYear", Integer, nullable=False),
    Column("LandValue", Numeric(12, 2, asdecimal=True)),
    Column("ImprovementValue", Numeric(12, 2, asdecimal=True)),
    Column("MarketValue", Numeric(12, 2, asdecimal=True)),
    Column("AssessedValue", Numeric(12, 2, asdecimal=True)),
    Column("LastModified", DateTime, nullable=False, index=True),
)

structure = Table(
    "Structure",
    metadata,
    Column("StructureID", Integer, primary_key=True, autoincrement=False),
    Column("PropertyID", Integer, nullable=False),
    Column("StructureType", String(30)),
    Column("SquareFootage", Integer),
    Column("Bedrooms", Integer, nullable=True),
    Column("Bathrooms", Numeric(3, 1, asdecimal=True), nullable=True),
    Column("YearBuilt", Integer, nullable=True),
    Column("Condition", String(10)),
    Column("LastModified", DateTime, nullable=False, index=True),
)

#: The four tables, parents first.
TABLES: tuple[Table, Table, Table, Table] = (property, property_owner, property_value, structure)

#: Primary-key column of each table, by table name.
PRIMARY_KEYS: dict[str, str] = {
    "Property": "PropertyID",
    "PropertyOwner": "OwnerID",
    "PropertyValue": "ValueID",
    "Structure": "StructureID",
}

#: Valid PropertyIDs start above this; lower ids are parcels purged before the 2004 conversion,
#: which is what orphan owners and valuations point at.
PROPERTY_ID_BASE = 100_000


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts holding every column) into ``table`` on ``conn``.

    PostgreSQL through psycopg 3 gets ``COPY ... FROM STDIN``; everything else an executemany.
    The caller owns the transaction.
    """
    if not rows:
        return
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        from psycopg import sql

        names = [c.name for c in table.columns]
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(n) for n in names)
        )
        driver_connection: Any = conn.connection.driver_connection
        with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(tuple(row[n] for n in names))
    else:
        conn.execute(table.insert(), list(rows))


# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

_T = TypeVar("_T")


class Weighted(Generic[_T]):
    """A weighted choice, with cumulative weights precomputed for speed."""

    def __init__(self, pairs: Sequence[tuple[_T, float]]) -> None:
        self.values = [v for v, _ in pairs]
        total = 0.0
        self.cum_weights: list[float] = []
        for _, weight in pairs:
            total += weight
            self.cum_weights.append(total)

    def pick(self, rng: random.Random) -> _T:
        return rng.choices(self.values, cum_weights=self.cum_weights)[0]


@dataclass(frozen=True, slots=True)
class City:
    name: str
    zips: tuple[str, ...]
    area_code: str = "509"
    spellings: tuple[str, ...] = ()


CITIES = Weighted(
    [
        (City("KENNEWICK", ("99336", "99337", "99338")), 38),
        (City("RICHLAND", ("99352", "99354")), 26),
        (City("PASCO", ("99301",)), 10),
        (City("WEST RICHLAND", ("99353",), spellings=("W RICHLAND", "W. Richland")), 11),
        (City("BENTON CITY", ("99320",), spellings=("BENTON CTY",)), 6),
        (City("PROSSER", ("99350",)), 9),
    ]
)
_CITY_BY_KEY = {c.name.replace(" ", ""): c for c in CITIES.values}
_CITY_BY_KEY |= {
    s.upper().replace(".", "").replace(" ", ""): c for c in CITIES.values for s in c.spellings
}

#: Mailing addresses of absentee owners: (city, state, zip, area code).
ELSEWHERE = [
    ("SEATTLE", "WA", "98101", "206"),
    ("SPOKANE", "WA", "99201", "509"),
    ("YAKIMA", "WA", "98901", "509"),
    ("PORTLAND", "OR", "97201", "503"),
    ("BOISE", "ID", "83702", "208"),
    ("PHOENIX", "AZ", "85004", "602"),
    ("SAN JOSE", "CA", "95113", "408"),
]

STREETS = [
    "CANAL", "CLEARWATER", "COLUMBIA CENTER", "GAGE", "EDISON", "OLYMPIA", "VISTA", "STEPTOE",
    "KEENE", "VAN GIESEN", "JADWIN", "STEVENS", "BOMBING RANGE", "BADGER CANYON", "RACHEL",
    "10TH", "4TH", "27TH", "KENNEWICK", "GEORGE WASHINGTON", "LESLIE", "GRANDRIDGE", "VISTA",
    "THAYER", "LEE", "SWIFT", "WILLIAMS", "WRIGHT", "CORRAL CREEK", "DALLAS", "ZINFANDEL",
    "QUEENSGATE", "HILDEBRAND", "SYLVESTER", "COURT", "ROAD 68", "WINE COUNTRY", "SIXTH",
    "MEADOW HILLS", "HORIZON", "ORCHARD", "CHARDONNAY", "KEYS", "SHERIDAN", "HORN RAPIDS",
]  # fmt: skip
STREET_SUFFIXES = Weighted(
    [("ST", 26), ("AVE", 22), ("DR", 16), ("CT", 8), ("PL", 8), ("LN", 5), ("WAY", 5),
     ("BLVD", 4), ("RD", 4), ("LOOP", 2)]
)  # fmt: skip
DIRECTIONS = Weighted([("", 45), ("W", 18), ("E", 12), ("N", 10), ("S", 10), ("SW", 5)])
SUBDIVISIONS = [
    "CANYON LAKES", "HANSEN PARK", "SOUTHRIDGE", "BADGER MOUNTAIN SOUTH", "MEADOW SPRINGS",
    "HORN RAPIDS", "CREEKSTONE", "CHAMPOUX VISTA", "TAPTEAL", "SUNSET HILLS", "ORCHARD HILLS",
    "COLUMBIA PARK", "THE HEIGHTS AT RANCHO REATA", "WHITE BLUFFS", "CHERRY CREEK",
]  # fmt: skip
SURNAMES = [
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ",
    "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR",
    "MOORE", "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON", "WHITE", "HARRIS", "SANCHEZ",
    "CLARK", "RAMIREZ", "LEWIS", "ROBINSON", "WALKER", "YOUNG", "ALLEN", "KING", "WRIGHT",
    "SCOTT", "TORRES", "NGUYEN", "HILL", "FLORES", "GREEN", "ADAMS", "NELSON", "BAKER", "HALL",
    "RIVERA", "CAMPBELL", "MITCHELL", "CARTER", "ROBERTS", "OLSON", "PETERSON", "LARSON",
    "SCHMIDT", "MCDONALD", "O'BRIEN", "VAN HORN", "DE LA CRUZ", "KOWALSKI", "YAMAMOTO",
]  # fmt: skip
FIRST_NAMES = [
    "JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA", "DAVID",
    "ELIZABETH", "WILLIAM", "BARBARA", "RICHARD", "SUSAN", "JOSEPH", "JESSICA", "THOMAS",
    "SARAH", "CHARLES", "KAREN", "DANIEL", "LISA", "MATTHEW", "NANCY", "ANTHONY", "BETTY",
    "MARK", "SANDRA", "DONALD", "MARGARET", "STEVEN", "ASHLEY", "ANDREW", "KIMBERLY", "JOSE",
    "MARIA", "KEVIN", "DONNA", "BRIAN", "CAROL", "GEORGE", "MICHELLE", "EDWARD", "EMILY",
]  # fmt: skip
COMPANY_WORDS = [
    "COLUMBIA BASIN", "TRI-CITIES", "BADGER MOUNTAIN", "ATOMIC CITY", "RATTLESNAKE RIDGE",
    "YAKIMA VALLEY", "HORSE HEAVEN", "CASCADE", "NORTHWEST", "GREAT BASIN", "DESERT SAGE",
]  # fmt: skip
COMPANY_KINDS = [
    "HOLDINGS LLC", "RENTALS INC", "PROPERTIES LLC", "INVESTMENTS LP", "FARMS INC",
    "DEVELOPMENT CO", "LAND COMPANY", "VINEYARDS LLC", "STORAGE LLC", "PARTNERS",
]  # fmt: skip
GOVERNMENT_OWNERS = [
    "BENTON COUNTY", "CITY OF KENNEWICK", "CITY OF RICHLAND", "CITY OF WEST RICHLAND",
    "STATE OF WASHINGTON", "PORT OF BENTON", "PORT OF KENNEWICK", "KENNEWICK SCHOOL DIST 17",
    "RICHLAND SCHOOL DIST 400", "UNITED STATES OF AMERICA", "BENTON PUD",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class PropertyClass:
    code: str
    improved: bool
    main_structures: tuple[str, ...]
    residential: bool
    sqft: tuple[int, int]
    rate: tuple[int, int]  # improvement dollars per square foot
    acres: tuple[float, float]
    land: tuple[int, int]  # land value per parcel (residential) or per acre (others)
    land_per_acre: bool


PROPERTY_CLASSES = Weighted(
    [
        (PropertyClass("111", True, ("SINGLE FAMILY", "SFR", "Single Family Res", "RESIDENCE"),
                       True, (800, 4200), (120, 230), (0.11, 0.6), (45_000, 165_000), False),
         73.8),
        (PropertyClass("112", True, ("DUPLEX", "TRIPLEX", "FOURPLEX"),
                       True, (1600, 4400), (110, 190), (0.15, 0.7), (60_000, 180_000), False),
         4),
        (PropertyClass("113", True, ("APARTMENT", "APARTMENTS"),
                       False, (6000, 60_000), (90, 170), (0.5, 6.0), (150_000, 450_000), True),
         1),
        (PropertyClass("118", True, ("MANUFACTURED HOME", "MOBILE HOME", "MH DOUBLEWIDE"),
                       True, (900, 2300), (45, 95), (0.15, 2.0), (25_000, 90_000), False),
         5),
        (PropertyClass("580", True, ("RETAIL", "STRIP CENTER", "RESTAURANT"),
                       False, (1500, 25_000), (90, 180), (0.3, 8.0), (250_000, 650_000), True),
         3),
        (PropertyClass("650", True, ("OFFICE", "MEDICAL OFFICE"),
                       False, (1500, 20_000), (100, 210), (0.3, 5.0), (250_000, 600_000), True),
         2),
        (PropertyClass("310", True, ("WAREHOUSE", "LIGHT INDUSTRIAL"),
                       False, (5000, 80_000), (45, 95), (1.0, 40.0), (60_000, 160_000), True),
         1),
        (PropertyClass("830", True, ("SINGLE FAMILY", "POLE BUILDING", "BARN"),
                       True, (1100, 3200), (80, 160), (5.0, 320.0), (2_500, 9_500), True),
         9),
        (PropertyClass("910", False, (), False, (0, 0), (0, 0), (0.15, 40.0), (9_000, 60_000),
                       True),
         1.2),
    ]
)  # fmt: skip
_CLASS_BY_CODE = {c.code: c for c in PROPERTY_CLASSES.values}

OUTBUILDINGS = Weighted(
    [(("DETACHED GARAGE", 300, 900), 35), (("SHED", 64, 240), 25),
     (("POLE BUILDING", 600, 3000), 15), (("SHOP", 400, 2000), 12), (("CARPORT", 200, 500), 8),
     (("GREENHOUSE", 100, 400), 5)]
)  # fmt: skip

#: Structure condition codes as three generations of appraisers typed them.
CONDITIONS = Weighted(
    [("G", 14), ("GOOD", 16), ("Good", 10), ("AVG", 20), ("Average", 15), ("A", 5), ("P", 4),
     ("Poor", 4), ("", 12)]
)  # fmt: skip
_CONDITION_FACTOR = {"G": 1.1, "GOOD": 1.1, "Good": 1.1, "P": 0.7, "Poor": 0.7}

OWNER_TYPES = Weighted([("I", 82), ("C", 9), ("T", 6), ("G", 3)])
BAD_ZIPS = ("9933", "99336-", "N/A", "")


def parcel_number(index: int) -> str:
    """The (unique) Benton-County-style parcel number of the ``index``-th parcel, unpadded.

    ``1-0389-400-0004-000``: the plat/section part is derived from ``index // 50_000``
    injectively, the block from the thousands and the lot from the rest, so numbers never
    collide below 450 million parcels.
    """
    lot = index % 50 + 1
    block = (index // 50) % 1000
    plat = index // 50_000
    section = (plat * 7919) % 9000 + 1000
    return f"{1 + plat % 3}-{section:04d}-{block:03d}-{lot:04d}"


def canonical_city(text: str | None) -> City:
    """The :class:`City` a messy legacy City value means (Kennewick when unrecognisable)."""
    key = (text or "").upper().replace(".", "").replace(" ", "")
    return _CITY_BY_KEY.get(key, CITIES.values[0])


def money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


# --------------------------------------------------------------------------------------------
# The legacy data-entry clerk
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ParcelFacts:
    """What the generator knows about a parcel beyond its Property row, to derive children."""

    property_id: int
    property_class: PropertyClass
    city: City
    zip5: str
    situs: str  # clean upper-case street line
    year_built: int  # the plausible actual year, even when the stored value is 0/NULL
    acreage: float
    land_value: float  # current tax year
    improvement_value: float  # current tax year
    growth: float  # yearly appreciation
    sqft: int
    condition: str
    exemption: float  # 1.0 = fully taxable; < 1.0 senior/disabled exemption; 0.0 exempt


class LegacyFaker:
    """Produces legacy rows, deterministically from ``rng``, relative to ``now``.

    ``LastModified`` values are spread over the three years before ``now`` and are whole
    seconds (MariaDB's DATETIME keeps no fractions by default).
    """

    WINDOW = timedelta(days=3 * 365)

    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng = rng
        self.now = now.replace(microsecond=0)
        self.window_start = self.now - self.WINDOW

    # -- small messes -------------------------------------------------------------------------

    def timestamp(self, not_before: datetime | None = None) -> datetime:
        start = self.window_start if not_before is None else max(not_before, self.window_start)
        if start >= self.now:
            start = self.window_start
        span = (self.now - start).total_seconds()
        return start + timedelta(seconds=int(self.rng.random() * span))

    def messy_case(self, text: str, upper: float = 0.7, title: float = 0.2) -> str:
        r = self.rng.random()
        if r < upper:
            return text.upper()
        if r < upper + title:
            return text.title()
        return text.lower()

    def stray_spaces(self, text: str, probability: float) -> str:
        if self.rng.random() >= probability:
            return text
        kind = self.rng.randrange(3)
        if kind == 0:
            return " " + text
        if kind == 1:
            return text + " " * self.rng.randint(1, 3)
        return text.replace(" ", "  ", 1) if " " in text else text + " "

    def city(self, city: City) -> str:
        name = city.name
        if city.spellings and self.rng.random() < 0.15:
            name = self.rng.choice(city.spellings)
        return self.stray_spaces(self.messy_case(name, 0.55, 0.35), 0.08)

    def zip_code(self, zip5: str) -> str:
        r = self.rng.random()
        if r < 0.03:
            bad = self.rng.choice(BAD_ZIPS)
            return zip5[:4] if bad == "9933" else (zip5 + "-" if bad == "99336-" else bad)
        if r < 0.15:
            return f"{zip5}-{self.rng.randint(1000, 9999)}"
        return zip5

    def phone(self, area_code: str = "509") -> str:
        line = f"{self.rng.randint(0, 9999):04d}"
        r = self.rng.random()
        if r < 0.35:
            return f"({area_code}) 555-{line}"
        if r < 0.45:
            return f"{area_code}.555.{line}"
        if r < 0.60:
            return f"{area_code}555{line}"
        if r < 0.75:
            return f"{area_code}-555-{line}"
        if r < 0.85:
            return f"555-{line}"
        return ""

    def legacy_date(self, day: date, blank: float = 0.06) -> str:
        r = self.rng.random()
        if r < blank:
            return ""
        if r < 0.60:
            return day.strftime("%m/%d/%Y")
        if r < 0.95:
            return day.isoformat()
        return f"{day.month}/{day.day}/{day.year}"

    def random_day(self, first_year: int, last: date) -> date:
        first = date(first_year, 1, 1)
        return first + timedelta(days=self.rng.randrange(max((last - first).days, 1)))

    def street_line(self) -> str:
        rng = self.rng
        direction = DIRECTIONS.pick(rng)
        street = rng.choice(STREETS)
        number = rng.randint(100, 9999) if rng.random() < 0.9 else rng.randint(10_000, 149_999)
        parts = [str(number), direction, street, STREET_SUFFIXES.pick(rng)]
        return " ".join(p for p in parts if p)

    def situs_address(self, clean: str) -> str:
        text = clean
        if self.rng.random() < 0.1:
            text += self.rng.choice((" #B", " UNIT 2", " APT 4", " #101"))
        if self.rng.random() < 0.08:
            text = text.replace(" AVE", " AVE.").replace(" ST", " ST.").replace(" DR", " DR.")
        return self.stray_spaces(self.messy_case(text, 0.75, 0.2), 0.06)

    # -- Property -----------------------------------------------------------------------------

    def new_property(self, property_id: int) -> tuple[dict[str, Any], ParcelFacts]:
        rng = self.rng
        klass = PROPERTY_CLASSES.pick(rng)
        city = CITIES.pick(rng)
        zip5 = rng.choice(city.zips)
        situs = self.street_line()
        acreage = rng.uniform(*klass.acres)
        year = max(1905, self.now.year - 1 - int(rng.expovariate(1 / 24)))
        stored_year: int | None = year if klass.improved else None
        if klass.improved and rng.random() < 0.008:
            stored_year = rng.choice((0, None))
        sqft = rng.randint(*klass.sqft) if klass.improved else 0
        condition = CONDITIONS.pick(rng) if klass.improved else ""
        rate = rng.uniform(*klass.rate) * _CONDITION_FACTOR.get(condition, 1.0)
        land = rng.uniform(*klass.land) * (acreage if klass.land_per_acre else 1.0)
        r = rng.random()
        exemption = 1.0 if r < 0.95 else (0.0 if r < 0.96 else rng.uniform(0.55, 0.9))
        facts = ParcelFacts(
            property_id=property_id,
            property_class=klass,
            city=city,
            zip5=zip5,
            situs=situs,
            year_built=year,
            acreage=acreage,
            land_value=land,
            improvement_value=sqft * rate,
            growth=rng.uniform(0.03, 0.11),
            sqft=sqft,
            condition=condition,
            exemption=exemption,
        )
        parcel = parcel_number(property_id - PROPERTY_ID_BASE)
        parcel += "-" + rng.choice(("000", "000", "000", "001", "002"))
        if rng.random() < 0.03:
            parcel = parcel.replace("-", "")
        row = {
            "PropertyID": property_id,
            "ParcelNumber": parcel.ljust(PARCEL_NUMBER_WIDTH),
            "SitusAddress": self.situs_address(situs),
            "City": self.city(city),
            "State": rng.choices(("WA", "wa", "Wa", ""), cum_weights=(96, 98, 99, 100))[0],
            "ZipCode": self.zip_code(zip5),
            "LegalDescription": self.legal_description(klass),
            "Acreage": Decimal(f"{acreage:.4f}"),
            "YearBuilt": stored_year,
            "PropertyClass": klass.code,
            "LastModified": self.timestamp(),
        }
        return row, facts

    def legal_description(self, klass: PropertyClass) -> str:
        rng = self.rng
        if klass.code in ("830", "910") or rng.random() < 0.1:
            quarter = rng.choice(("NE", "NW", "SE", "SW"))
            text = (
                f"SECTION {rng.randint(1, 36)} TOWNSHIP {rng.randint(7, 10)} "
                f"RANGE {rng.randint(24, 30)} {quarter} QUARTER"
            )
            if rng.random() < 0.3:
                text += f" LESS N {rng.randint(10, 300)} FT FOR ROAD"
        elif rng.random() < 0.15:
            text = f"SHORT PLAT #{rng.randint(100, 4999)} LOT {rng.randint(1, 4)}"
        else:
            subdivision = rng.choice(SUBDIVISIONS)
            text = f"LOT {rng.randint(1, 40)} BLK {rng.randint(1, 12)} {subdivision}"
            if rng.random() < 0.4:
                text += f" PHASE {rng.randint(1, 9)}"
        return self.messy_case(text, 0.9, 0.07)

    def facts_from_row(self, row: Mapping[str, Any]) -> ParcelFacts:
        """Best-effort :class:`ParcelFacts` of an existing Property row (for new child rows)."""
        rng = self.rng
        klass = _CLASS_BY_CODE.get(
            str(row.get("PropertyClass") or "").strip(), _CLASS_BY_CODE["111"]
        )
        city = canonical_city(row.get("City"))
        zip_code = str(row.get("ZipCode") or "")[:5]
        year = row.get("YearBuilt") or max(1905, self.now.year - 1 - int(rng.expovariate(1 / 24)))
        acreage = float(row.get("Acreage") or 0.2)
        sqft = rng.randint(*klass.sqft) if klass.improved else 0
        return ParcelFacts(
            property_id=int(row["PropertyID"]),
            property_class=klass,
            city=city,
            zip5=zip_code if zip_code in city.zips else city.zips[0],
            situs=" ".join(str(row.get("SitusAddress") or "").upper().split()),
            year_built=int(year),
            acreage=acreage,
            land_value=rng.uniform(*klass.land) * (acreage if klass.land_per_acre else 1.0),
            improvement_value=sqft * rng.uniform(*klass.rate),
            growth=rng.uniform(0.03, 0.11),
            sqft=sqft,
            condition=CONDITIONS.pick(rng) if klass.improved else "",
            exemption=1.0,
        )

    # -- PropertyOwner ------------------------------------------------------------------------

    def person(self, surname: str | None = None) -> str:
        rng = self.rng
        last = surname or rng.choice(SURNAMES)
        first = rng.choice(FIRST_NAMES)
        middle = f" {chr(rng.randint(65, 90))}" if rng.random() < 0.6 else ""
        r = rng.random()
        if r < 0.72:
            return f"{last} {first}{middle}"
        if r < 0.87:
            return f"{last}, {first}{middle}"
        if r < 0.95:
            return f"{first}{middle} {last}".title()
        spouse = rng.choice(FIRST_NAMES)
        return f"{last} {first} & {spouse}"

    def owner_name(self, owner_type: str, surname: str | None = None) -> str:
        rng = self.rng
        if owner_type == "C":
            return f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)}"
        if owner_type == "T":
            last = surname or rng.choice(SURNAMES)
            kind = rng.choice(("FAMILY TRUST", "LIVING TRUST", "REVOCABLE TRUST", "TRUST"))
            if rng.random() < 0.4:
                return f"{last} {rng.choice(FIRST_NAMES)} {kind}"
            return f"{last} {kind}"
        if owner_type == "G":
            return rng.choice(GOVERNMENT_OWNERS)
        return self.person(surname)

    def owner_type_code(self, owner_type: str) -> str:
        r = self.rng.random()
        if r < 0.03:
            return ""
        if r < 0.08:
            return owner_type.lower()
        return owner_type

    def mailing_address(self, facts: ParcelFacts, absentee: bool) -> tuple[str, str]:
        """A mailing address line and the phone area code that goes with it."""
        rng = self.rng
        if absentee:
            city, state, zip5, area = rng.choice(ELSEWHERE)
            street = self.street_line() if rng.random() < 0.7 else f"PO BOX {rng.randint(1, 9999)}"
        elif rng.random() < 0.15:
            city, state, zip5, area = facts.city.name, "WA", facts.zip5, facts.city.area_code
            street = f"PO BOX {rng.randint(1, 9999)}"
        else:
            city, state, zip5, area = facts.city.name, "WA", facts.zip5, facts.city.area_code
            street = facts.situs
        separator = ", " if rng.random() < 0.5 else " "
        text = f"{street}{separator}{city} {state} {self.zip_code(zip5)}".strip()
        return self.stray_spaces(self.messy_case(text, 0.8, 0.15), 0.05), area

    def owners(self, facts: ParcelFacts, count: int) -> list[dict[str, Any]]:
        """``count`` owner rows of a parcel (no OwnerID yet): current owners, then former ones."""
        if count <= 0:
            return []
        rng = self.rng
        current = 1 + sum(rng.random() < 0.6 for _ in range(count - 1))
        commercial = not facts.property_class.residential
        owner_type = OWNER_TYPES.pick(rng)
        if commercial and owner_type == "I" and rng.random() < 0.7:
            owner_type = "C"
        surname = rng.choice(SURNAMES)
        absentee = owner_type in ("C", "G") or rng.random() < 0.12
        mailing, area = self.mailing_address(facts, absentee)
        shares = self.shares(current)
        last_day = self.now.date()
        since = self.random_day(max(1960, facts.year_built), last_day)
        rows = []
        for i in range(count):
            is_current = i < current
            kind = owner_type if is_current and i == 0 else OWNER_TYPES.pick(rng)
            if is_current and i > 0 and owner_type == "I":
                kind = "I"
            name = self.owner_name(kind, surname if is_current else None)
            if is_current:
                start, end = since, None
                share = shares[i]
            else:
                start = self.random_day(max(1950, facts.year_built - 5), since)
                end = since
                share = Decimal("100.00")
            if not is_current:
                mailing_i, area_i = self.mailing_address(facts, rng.random() < 0.3)
            else:
                mailing_i, area_i = mailing, area
            end_text: str | None = None
            if end is not None:
                end_text = self.legacy_date(end, blank=0.03)
            elif rng.random() < 0.02:
                end_text = ""
            rows.append(
                {
                    "PropertyID": facts.property_id,
                    "OwnerName": self.stray_spaces(name, 0.04),
                    "OwnerType": self.owner_type_code(kind),
                    "OwnershipPercentage": share,
                    "StartDate": self.legacy_date(start),
                    "EndDate": end_text,
                    "MailingAddress": mailing_i,
                    "Phone": self.phone(area_i),
                    "LastModified": self.timestamp(),
                }
            )
        return rows

    def shares(self, current: int) -> list[Decimal]:
        if current == 1:
            return [Decimal("100.00")]
        if current == 2 and self.rng.random() < 0.2:
            return [Decimal("60.00"), Decimal("40.00")]
        each = Decimal(100) / current
        shares = [each.quantize(Decimal("0.01"))] * current
        shares[-1] = Decimal(100) - sum(shares[:-1])
        return shares

    def orphan_owner(self) -> dict[str, Any]:
        """An owner row whose parcel was purged long ago."""
        facts = self.facts_from_row({"PropertyID": self.orphan_property_id(), "City": ""})
        facts.situs = self.street_line()
        return self.owners(facts, 1)[0]

    def orphan_property_id(self) -> int:
        return self.rng.randint(1, PROPERTY_ID_BASE - 1)

    def misspell(self, name: str) -> str:
        """The same owner keyed in again by someone else: case, spacing, comma, typo."""
        rng = self.rng
        text = name.strip()
        for _ in range(3):
            kind = rng.randrange(6)
            if kind == 0:
                text = text.title() if text.isupper() else text.upper()
            elif kind == 1:
                text = text.replace(" ", "  ", 1)
            elif kind == 2:
                text = text.replace(",", "") if "," in text else text.replace(" ", ", ", 1)
            elif kind == 3 and len(text) > 4:
                i = rng.randrange(1, len(text) - 2)
                text = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
            elif kind == 4 and len(text) > 4:
                i = rng.randrange(1, len(text) - 1)
                text = text[:i] + text[i + 1 :]
            else:
                text = " " + text + " "
            if text.strip() != name.strip():
                break
        if text == name:
            text = name + " "
        return text

    def duplicate_owner(self, original: Mapping[str, Any]) -> dict[str, Any]:
        row = dict(original)
        row.pop("OwnerID", None)
        row["OwnerName"] = self.misspell(str(original["OwnerName"] or ""))
        if self.rng.random() < 0.5:
            row["Phone"] = self.phone()
        if self.rng.random() < 0.3:
            row["StartDate"] = ""
        row["LastModified"] = self.timestamp()
        return row

    # -- PropertyValue ------------------------------------------------------------------------

    def values(self, facts: ParcelFacts, tax_years: Sequence[int]) -> list[dict[str, Any]]:
        """Valuation rows of a parcel for ``tax_years`` (no ValueID yet)."""
        rng = self.rng
        with_cents = rng.random() < 0.08
        rows = []
        for year in tax_years:
            factor = (1 + facts.growth) ** (year - self.now.year)
            land = round(facts.land_value * factor, -1)
            improvement = round(facts.improvement_value * factor, -1)
            if with_cents:
                land += rng.randint(0, 99) / 100
                improvement += rng.randint(0, 99) / 100 if improvement else 0
            market = land + improvement
            if rng.random() < 0.005:  # hand-edited, no longer adds up
                market += rng.choice((-1, 1)) * rng.randint(100, 5000)
            assessed = market * facts.exemption
            rows.append(
                {
                    "PropertyID": facts.property_id,
                    "TaxYear": year,
                    "LandValue": money(land),
                    "ImprovementValue": money(improvement),
                    "MarketValue": money(market),
                    "AssessedValue": money(assessed),
                    "LastModified": self.timestamp(datetime(min(year, self.now.year), 1, 1)),
                }
            )
        return rows

    def orphan_value(self) -> dict[str, Any]:
        facts = self.facts_from_row({"PropertyID": self.orphan_property_id(), "City": ""})
        year = self.now.year - self.rng.randrange(5)
        return self.values(facts, [year])[0]

    # -- Structure ----------------------------------------------------------------------------

    def structures(self, facts: ParcelFacts, count: int) -> list[dict[str, Any]]:
        """``count`` structure rows (no StructureID yet): the main building, then outbuildings."""
        rng = self.rng
        klass = facts.property_class
        rows = []
        for i in range(count):
            bedrooms: int | None = None
            bathrooms: Decimal | None = None
            if i == 0 and klass.improved:
                kind = klass.main_structures[0]
                if rng.random() < 0.5:
                    kind = rng.choice(klass.main_structures)
                sqft = facts.sqft
                year: int | None = facts.year_built
                condition = facts.condition
                if klass.residential and kind not in ("POLE BUILDING", "BARN"):
                    if rng.random() < 0.97:
                        bedrooms = max(1, min(7, round(sqft / 600) + rng.randint(-1, 1)))
                    if rng.random() < 0.97:
                        bathrooms = Decimal(rng.randint(2, max(2, min(9, sqft // 450)))) / 2
            else:
                kind, low, high = OUTBUILDINGS.pick(rng)
                sqft = rng.randint(low, high)
                year = min(self.now.year - 1, facts.year_built + rng.randint(0, 30))
                condition = CONDITIONS.pick(rng)
            if rng.random() < 0.04:
                year = None
            rows.append(
                {
                    "PropertyID": facts.property_id,
                    "StructureType": self.messy_case(kind, 0.9, 0.07),
                    "SquareFootage": sqft,
                    "Bedrooms": bedrooms,
                    "Bathrooms": bathrooms,
                    "YearBuilt": year,
                    "Condition": condition,
                    "LastModified": self.timestamp(),
                }
            )
        return rows
