"""Value transforms and type casts used by field mappings.

Each transform is a plain function from one value to another; ``None`` passes
through untouched unless a transform says otherwise.  Casts raise ``ValueError``
with a readable message; the mapping turns that into a row error.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

# decimal arithmetic of our own, whatever a library does to the thread's context
# (firebird-driver sets the global precision to 34 when it loads)
DECIMALS = Context(prec=28)

Transform = Callable[[Any], Any]

_SPACES = re.compile(r"\s+")
_DIGITS = re.compile(r"\D")


def _str_op(fn: Callable[[str], Any]) -> Transform:
    def apply(value: Any) -> Any:
        return fn(value) if isinstance(value, str) else value

    return apply


def _zip5(value: str) -> str | None:
    digits = _DIGITS.sub("", value)
    return digits[:5] if len(digits) >= 5 else None


def _zip(value: str) -> str | None:
    digits = _DIGITS.sub("", value)
    if len(digits) == 9:
        return f"{digits[:5]}-{digits[5:]}"
    return digits[:5] if len(digits) >= 5 else None


def _phone(value: str) -> str | None:
    digits = _DIGITS.sub("", value)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) == 10:
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    if len(digits) == 7:
        return f"{digits[:3]}-{digits[3:]}"
    return None


def _empty_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


SIMPLE: dict[str, Transform] = {
    "trim": _str_op(str.strip),
    "upper": _str_op(str.upper),
    "lower": _str_op(str.lower),
    "title": _str_op(lambda s: " ".join(w.capitalize() for w in s.split())),
    "collapse_spaces": _str_op(lambda s: _SPACES.sub(" ", s).strip()),
    "zip5": _str_op(_zip5),
    "zip": _str_op(_zip),
    "phone": _str_op(_phone),
    "digits": _str_op(lambda s: _DIGITS.sub("", s)),
    "empty_to_null": _empty_to_none,
}


def _null_if(values: list[Any]) -> Transform:
    blocked = set(values)

    def apply(value: Any) -> Any:
        probe = value.strip() if isinstance(value, str) else value
        return None if probe in blocked else value

    return apply


def _replace(args: list[str]) -> Transform:
    old, new = args
    return _str_op(lambda s: s.replace(old, new))


def _pad_left(args: dict[str, Any]) -> Transform:
    width, char = int(args["width"]), str(args.get("char", "0"))
    return lambda v: None if v is None else str(v).rjust(width, char)


def _round(digits: int) -> Transform:
    exponent = Decimal(1).scaleb(-int(digits))

    def apply(value: Any) -> Any:
        if isinstance(value, Decimal):
            return value.quantize(exponent, rounding=ROUND_HALF_UP, context=DECIMALS)
        if isinstance(value, float):
            return round(value, int(digits))
        return value

    return apply


PARAMETRIC: dict[str, Callable[[Any], Transform]] = {
    "null_if": _null_if,
    "replace": _replace,
    "pad_left": _pad_left,
    "round": _round,
}


def build(item: str | dict[str, Any]) -> Transform:
    """The transform named by one entry of a field's ``transforms`` list."""
    if isinstance(item, str):
        if item not in SIMPLE:
            raise ValueError(
                f"unknown transform '{item}'; choose from: " + ", ".join(sorted(SIMPLE))
            )
        return SIMPLE[item]
    if len(item) != 1:
        raise ValueError("a parametrised transform is a mapping with exactly one name")
    ((name, args),) = item.items()
    if name not in PARAMETRIC:
        raise ValueError(
            f"unknown transform '{name}'; choose from: " + ", ".join(sorted(PARAMETRIC))
        )
    try:
        return PARAMETRIC[name](args)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"bad arguments for transform '{name}': {exc}") from exc


# --- casts -------------------------------------------------------------------------------------

_TRUE = {"1", "y", "yes", "t", "true", "on"}
_FALSE = {"0", "n", "no", "f", "false", "off"}


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        if value != int(value):
            raise ValueError(f"{value!r} is not a whole number")
        return int(value)
    text = str(value).strip().replace(",", "")
    try:
        return int(text)
    except ValueError:
        number = Decimal(text)
        if number != number.to_integral_value():
            raise ValueError(f"{value!r} is not a whole number") from None
        return int(number)


def _to_decimal(scale: int) -> Callable[[Any], Decimal]:
    exponent = Decimal(1).scaleb(-scale)

    def cast(value: Any) -> Decimal:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, float):
            number = Decimal(repr(value))
        else:
            text = str(value).strip().replace(",", "").replace("$", "")
            try:
                number = Decimal(text)
            except InvalidOperation:
                raise ValueError(f"{value!r} is not a number") from None
        return number.quantize(exponent, rounding=ROUND_HALF_UP, context=DECIMALS)

    return cast


def _to_float(value: Any) -> float:
    if isinstance(value, str):
        value = value.strip().replace(",", "")
    return float(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a yes/no value")


def _to_date(formats: list[str]) -> Callable[[Any], dt.date]:
    def cast(value: Any) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        text = str(value).strip()
        for fmt in formats:
            try:
                return dt.datetime.strptime(text, fmt).date()
            except ValueError:
                continue
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            raise ValueError(f"{value!r} is not a date in {formats or ['ISO']}") from None

    return cast


def _to_datetime(formats: list[str]) -> Callable[[Any], dt.datetime]:
    def cast(value: Any) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        if isinstance(value, dt.date):
            return dt.datetime.combine(value, dt.time())
        text = str(value).strip()
        for fmt in formats:
            try:
                return dt.datetime.strptime(text, fmt)
            except ValueError:
                continue
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a date-time in {formats or ['ISO']}") from None

    return cast


def _to_str(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def cast_for(type_name: str, *, scale: int = 2, formats: list[str] | None = None) -> Transform:
    """The cast to a field's declared type; ``None`` stays ``None``."""
    casts: dict[str, Transform] = {
        "string": _to_str,
        "text": _to_str,
        "integer": _to_int,
        "bigint": _to_int,
        "decimal": _to_decimal(scale),
        "float": _to_float,
        "boolean": _to_bool,
        "date": _to_date(formats or []),
        "datetime": _to_datetime(formats or []),
    }
    return casts[type_name]
