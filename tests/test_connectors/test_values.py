"""``connectors.cdc.values``: pgoutput's column text to the values our Avro events hold.

The texts are what PostgreSQL's output functions print in the replication
session's settings (``DateStyle=ISO``, ``TimeZone=UTC``, ``bytea_output=hex``),
and the expected values are those Debezium's PostgreSQL connector writes with
its defaults, so events from either decode alike. Covered:

* one case for every type OID in ``SCALARS`` and every array OID in ``ARRAYS``
  (a test fails when an OID is added without a case), and unknown OIDs
  (enums, domains) as text;
* the refusals: numeric NaN and infinities, infinite and BC dates and
  timestamps, bytea in escape format, multi-dimensional arrays;
* the time arithmetic, checked against hand computations rather than against
  the code's own formulas: microseconds since 1970 (also before it), since
  midnight (also ``24:00:00``), timestamptz offsets converted to UTC;
* ``parse_array`` on PostgreSQL's quoting and escaping, with a property test
  that formats random elements exactly as ``array_out`` does and parses them back.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.cdc.values import (
    ARRAYS,
    SCALARS,
    UnrepresentableValue,
    converter,
    parse_array,
)
from schemas.debezium import zoned_timestamp

pytestmark = pytest.mark.unit

#: 1970-01-01 to 2024-07-01: 54 years of 365 days, 13 leap days (1972 .. 2020), then
#: January to June 2024 (31 + 29 + 31 + 30 + 31 + 30 = 182).
DAYS_1970_TO_2024_07_01 = 54 * 365 + 13 + 182
#: 09:15:03 as seconds since midnight.
NINE_FIFTEEN_03 = (9 * 60 + 15) * 60 + 3

#: Type OID -> (text as PostgreSQL prints it, the event value).
SCALAR_CASES: dict[int, tuple[str, Any]] = {
    16: ("t", True),
    17: ("\\xdeadbeef", b"\xde\xad\xbe\xef"),
    20: ("-9223372036854775808", -(2**63)),
    21: ("-32768", -32768),
    23: ("2147483647", 2**31 - 1),
    26: ("4294967295", 2**32 - 1),
    700: ("1.5", 1.5),
    701: ("3.141592653589793", 3.141592653589793),
    1700: ("1234.50", Decimal("1234.50")),
    25: ('naïve ☃, "quoted" and \\ backslashed', 'naïve ☃, "quoted" and \\ backslashed'),
    1042: ("GB ", "GB "),
    1043: ("Q-2026-000123", "Q-2026-000123"),
    19: ("pg_catalog", "pg_catalog"),
    1082: ("2024-07-01", date(2024, 7, 1)),
    1083: ("09:15:03.5", NINE_FIFTEEN_03 * 1_000_000 + 500_000),
    1114: (
        "2024-07-01 09:15:03.123456",
        (DAYS_1970_TO_2024_07_01 * 86_400 + NINE_FIFTEEN_03) * 1_000_000 + 123_456,
    ),
    1184: ("2024-07-01 09:15:03.123456+00", "2024-07-01T09:15:03.123456Z"),
    2950: ("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    114: ('{"a": [1, 2]}', '{"a": [1, 2]}'),
    3802: ('{"a": [1, 2]}', '{"a": [1, 2]}'),
}

#: Array type OID -> (literal as PostgreSQL prints it, the event value).
ARRAY_CASES: dict[int, tuple[str, list[Any]]] = {
    1000: ("{t,f,NULL}", [True, False, None]),
    1005: ("{1,-2}", [1, -2]),
    1007: ("{1,2,NULL}", [1, 2, None]),
    1016: ("{9223372036854775807}", [2**63 - 1]),
    1021: ("{1.5,-0.25}", [1.5, -0.25]),
    1022: ("{1e+300,2.5}", [1e300, 2.5]),
    1231: ("{1.50,NULL,-0.01}", [Decimal("1.50"), None, Decimal("-0.01")]),
    1009: ('{"a,b","say \\"hi\\"",NULL,"NULL"}', ["a,b", 'say "hi"', None, "NULL"]),
    1014: ('{"GB ",USD}', ["GB ", "USD"]),
    1015: ("{x,y}", ["x", "y"]),
    1182: ("{2024-07-01,1969-07-20}", [date(2024, 7, 1), date(1969, 7, 20)]),
    1115: ('{"1970-01-01 00:00:00.000001"}', [1]),
    1185: (
        '{"2024-07-01 09:15:03.123456+00","2024-07-01 14:45:03+05:30"}',
        ["2024-07-01T09:15:03.123456Z", "2024-07-01T09:15:03.000000Z"],
    ),
    2951: ("{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]),
    199: ('{"{\\"a\\": 1}"}', ['{"a": 1}']),
    3807: ('{"{\\"a\\": 1}",NULL}', ['{"a": 1}', None]),
}


def convert(type_oid: int, text: str) -> Any:
    return converter(type_oid)(text)


# -- every OID ------------------------------------------------------------------------


def test_every_scalar_and_array_oid_has_a_case() -> None:
    assert set(SCALAR_CASES) == set(SCALARS)
    assert set(ARRAY_CASES) == set(ARRAYS)


@pytest.mark.parametrize(("type_oid", "case"), sorted(SCALAR_CASES.items()))
def test_scalar_text_becomes_the_debezium_value(type_oid: int, case: tuple[str, Any]) -> None:
    text, expected = case
    value = convert(type_oid, text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(("type_oid", "case"), sorted(ARRAY_CASES.items()))
def test_array_literal_becomes_a_list_of_element_values(
    type_oid: int, case: tuple[str, list[Any]]
) -> None:
    text, expected = case
    value = convert(type_oid, text)
    assert value == expected
    assert [type(v) for v in value] == [type(v) for v in expected]


def test_boolean_false() -> None:
    assert convert(16, "f") is False


def test_boolean_as_the_snapshots_text_cast_spells_it() -> None:
    # boolean::text is "true"/"false", not the output function's "t"/"f".
    assert convert(16, "true") is True
    assert convert(16, "false") is False


def test_numeric_keeps_its_scale() -> None:
    assert convert(1700, "1234.50").as_tuple().exponent == -2
    assert convert(1700, "-0.000001") == Decimal("-0.000001")


@pytest.mark.parametrize("type_oid", [16_400, 3_614, 600])  # an enum, tsvector, point
def test_unknown_types_are_their_text(type_oid: int) -> None:
    assert convert(type_oid, "QUOTED") == "QUOTED"
    assert convert(type_oid, "(1,2)") == "(1,2)"


def test_an_array_of_an_unknown_type_is_its_literal_text() -> None:
    assert convert(16_401, "{QUOTED,ACCEPTED}") == "{QUOTED,ACCEPTED}"


def test_float_special_values_are_floats() -> None:
    assert convert(701, "Infinity") == float("inf")
    assert convert(700, "-Infinity") == float("-inf")
    assert convert(701, "NaN") != convert(701, "NaN")  # a NaN


# -- numeric --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "not a number"])
def test_numeric_without_an_avro_decimal_form_is_refused(text: str) -> None:
    with pytest.raises(UnrepresentableValue):
        convert(1700, text)


def test_a_numeric_array_with_nan_is_refused() -> None:
    with pytest.raises(UnrepresentableValue):
        convert(1231, "{1.5,NaN}")


# -- timestamptz ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2024-07-01 09:15:03.123456+00", datetime(2024, 7, 1, 9, 15, 3, 123456, tzinfo=UTC)),
        ("2024-07-01 09:15:03+00", datetime(2024, 7, 1, 9, 15, 3, tzinfo=UTC)),
        ("2024-07-01 09:15:03.5+00", datetime(2024, 7, 1, 9, 15, 3, 500000, tzinfo=UTC)),
        ("2024-07-01 09:15:03.000001+00", datetime(2024, 7, 1, 9, 15, 3, 1, tzinfo=UTC)),
        ("1969-07-20 20:17:40+00", datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC)),
        ("0001-01-01 00:00:00+00", datetime(1, 1, 1, tzinfo=UTC)),
        ("9999-12-31 23:59:59.999999+00", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_timestamptz_in_utc_becomes_a_zoned_timestamp(text: str, instant: datetime) -> None:
    assert convert(1184, text) == zoned_timestamp(instant)


def test_timestamptz_zoned_timestamp_has_six_digits_and_z() -> None:
    assert convert(1184, "2024-07-01 09:15:03+00") == "2024-07-01T09:15:03.000000Z"


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2024-07-01 14:45:03.123456+05:30", "2024-07-01T09:15:03.123456Z"),
        ("2024-06-30 23:15:03-10", "2024-07-01T09:15:03.000000Z"),
        ("2024-07-01 09:15:03+05:53:28", "2024-07-01T03:21:35.000000Z"),  # an LMT offset
    ],
)
def test_timestamptz_with_an_offset_is_converted_to_utc(text: str, utc: str) -> None:
    assert convert(1184, text) == utc


@pytest.mark.parametrize(
    "text",
    [
        "infinity",
        "-infinity",
        "0044-03-15 12:00:00+00 BC",
        "10000-01-01 00:00:00+00",
    ],
)
def test_timestamptz_without_a_zoned_timestamp_form_is_refused(text: str) -> None:
    with pytest.raises(UnrepresentableValue):
        convert(1184, text)


@pytest.mark.parametrize("text", ["0001-01-01 00:30:00+01", "9999-12-31 23:30:00-01"])
def test_timestamptz_whose_utc_instant_is_out_of_range_is_refused(text: str) -> None:
    with pytest.raises(UnrepresentableValue):
        convert(1184, text)


# -- timestamp, time, date ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("1970-01-01 00:00:00", 0),
        ("1970-01-01 00:00:00.000001", 1),
        ("1969-12-31 23:59:59.999999", -1),
        # 164 days and 03:42:20 before 1970-01-01 (July 20 .. January 1 is 165 days).
        ("1969-07-20 20:17:40", -(164 * 86_400 + 3 * 3_600 + 42 * 60 + 20) * 1_000_000),
        (
            "1969-07-20 20:17:40.25",
            (-(164 * 86_400 + 3 * 3_600 + 42 * 60 + 20)) * 1_000_000 + 250_000,
        ),
        (
            "2024-07-01 09:15:03.123456",
            (DAYS_1970_TO_2024_07_01 * 86_400 + NINE_FIFTEEN_03) * 1_000_000 + 123_456,
        ),
        ("2024-07-01 09:15:03", 1_719_825_303_000_000),
    ],
)
def test_timestamp_is_microseconds_since_the_epoch(text: str, micros: int) -> None:
    assert convert(1114, text) == micros


@pytest.mark.parametrize("text", ["infinity", "-infinity", "0044-03-15 12:00:00 BC"])
def test_timestamp_without_a_micro_timestamp_form_is_refused(text: str) -> None:
    with pytest.raises(UnrepresentableValue):
        convert(1114, text)


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("00:00:00", 0),
        ("00:00:00.000001", 1),
        ("09:15:03", NINE_FIFTEEN_03 * 1_000_000),
        ("23:59:59.999999", 86_400_000_000 - 1),
        ("24:00:00", 86_400_000_000),  # PostgreSQL's time allows the end of the day
    ],
)
def test_time_is_microseconds_since_midnight(text: str, micros: int) -> None:
    assert convert(1083, text) == micros


@pytest.mark.parametrize(
    ("text", "day"),
    [("2024-07-01", date(2024, 7, 1)), ("1969-07-20", date(1969, 7, 20)), ("0001-01-01", date.min)],
)
def test_date(text: str, day: date) -> None:
    assert convert(1082, text) == day


@pytest.mark.parametrize("text", ["infinity", "-infinity", "0044-03-15 BC", "10000-01-01"])
def test_date_without_an_avro_date_form_is_refused(text: str) -> None:
    with pytest.raises(UnrepresentableValue):
        convert(1082, text)


# -- bytea ----------------------------------------------------------------------------


def test_bytea_hex() -> None:
    assert convert(17, "\\x") == b""
    assert convert(17, "\\x00FFabCD") == b"\x00\xff\xab\xcd"


@pytest.mark.parametrize("text", ["\\336\\255", "abc"])
def test_bytea_not_in_hex_format_is_refused(text: str) -> None:
    with pytest.raises(UnrepresentableValue, match="hex"):
        convert(17, text)


# -- parse_array ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("{}", []),
        ("{1,2,NULL}", ["1", "2", None]),
        ("{NULL}", [None]),
        ('{"NULL"}', ["NULL"]),  # quoted: the string, not a NULL
        ('{""}', [""]),
        ('{"",""}', ["", ""]),
        ('{"a,b",c}', ["a,b", "c"]),
        ('{c,"a,b"}', ["c", "a,b"]),
        ('{"with space","{braces}"}', ["with space", "{braces}"]),
        ('{"say \\"hi\\""}', ['say "hi"']),
        ('{"C:\\\\tmp\\\\"}', ["C:\\tmp\\"]),
        ('{"\\\\",x}', ["\\", "x"]),
        ("{naïve,☃}", ["naïve", "☃"]),
    ],
)
def test_parse_array(text: str, items: list[str | None]) -> None:
    assert parse_array(text) == items


@pytest.mark.parametrize(
    "text",
    [
        "{{1,2},{3,4}}",
        "{{}}",
        "[0:1]={1,2}",
        "1,2",
        "{1,2",
        "",
    ],
)
def test_parse_array_refuses_what_is_not_a_one_dimensional_literal(text: str) -> None:
    with pytest.raises(UnrepresentableValue):
        parse_array(text)


def test_a_multi_dimensional_array_value_is_refused() -> None:
    with pytest.raises(UnrepresentableValue, match="multi-dimensional"):
        convert(1007, "{{1,2},{3,4}}")


def array_out(items: list[str | None]) -> str:
    """PostgreSQL's ``array_out`` for a one-dimensional array of text elements.

    An element is quoted when it is empty, spells NULL in any case, or holds a
    brace, quote, backslash, the delimiter or white space; inside quotes, ``"``
    and ``\\`` are backslash-escaped.
    """
    out = []
    for item in items:
        if item is None:
            out.append("NULL")
            continue
        quote = (
            item == ""
            or item.upper() == "NULL"
            or any(c in '{}",\\' or c in " \t\n\r\v\f" for c in item)
        )
        if quote:
            out.append('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:
            out.append(item)
    return "{" + ",".join(out) + "}"


_ELEMENT = st.text(
    st.characters(codec="utf-8", exclude_characters="\0") | st.sampled_from('{}",\\ NUL'),
    max_size=8,
)


@given(st.lists(st.none() | _ELEMENT, max_size=6))
def test_parse_array_reads_back_what_array_out_prints(items: list[str | None]) -> None:
    assert parse_array(array_out(items)) == items
