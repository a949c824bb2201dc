"""A small ConfigDef: typed keys with Kafka's defaults, parsing and validation.

Kafka users write values as strings (server.properties, kafka-configs.sh, the wire), so every
key knows how to turn Kafka-style text into a typed value and back, and what range or set of
values it accepts. Errors name the key, the value and what was expected, so a mistake in a
properties file is a one-line fix.
"""
from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
LONG_MAX = INT64_MAX
INT_MAX = INT32_MAX
DOUBLE_MAX = 1.7976931348623157e308


class ConfigType(enum.IntEnum):
    """Kafka's DescribeConfigs ConfigType numbers (UNKNOWN for keys without a definition)."""

    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigError(ValueError):
    """A broker configuration problem; the message is meant for the person editing the file."""


class _Required:
    """Marker for keys without a default (Kafka's NO_DEFAULT_VALUE)."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

_INT_RE = re.compile(r"[+-]?[0-9]+")
_DOUBLE_RE = re.compile(
    r"[+-]?(NaN|Infinity|([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?)[dDfF]?")
_LIST_SPLIT = re.compile(r"\s*,\s*")


@attrs.frozen(slots=True)
class Range:
    """Numeric bounds, inclusive; either side may be open (None)."""

    min: float | None = None
    max: float | None = None

    def check(self, value: Any) -> str | None:
        if value is None:
            return None
        too_low = self.min is not None and value < self.min
        too_high = self.max is not None and value > self.max
        return self.describe() if too_low or too_high else None

    def describe(self) -> str:
        if self.min is not None and self.max is not None:
            return f"value must be between {_num(self.min)} and {_num(self.max)}"
        if self.min is not None:
            return f"value must be at least {_num(self.min)}"
        return f"value must be no more than {_num(self.max)}"


@attrs.frozen(slots=True)
class OneOf:
    """A string (or every element of a list) must be one of `values`."""

    values: tuple[str, ...]
    case_sensitive: bool = True

    def _ok(self, item: str) -> bool:
        if self.case_sensitive:
            return item in self.values
        return item.lower() in {v.lower() for v in self.values}

    def check(self, value: Any) -> str | None:
        if value is None:
            return None
        items = value if isinstance(value, list) else [value]
        bad = [i for i in items if not self._ok(i)]
        if bad:
            return f"'{bad[0]}' is not one of [{', '.join(self.values)}]"
        return None

    def describe(self) -> str:
        return f"one of [{', '.join(self.values)}]"


@attrs.frozen(slots=True)
class Predicate:
    """A custom rule: `fn(value)` returns an error text or None."""

    fn: Any
    text: str

    def check(self, value: Any) -> str | None:
        return None if value is None else self.fn(value)

    def describe(self) -> str:
        return self.text


Validator = Range | OneOf | Predicate


@attrs.frozen(slots=True)
class ConfigKey:
    """One key: Kafka name, type, typed default (None = null, REQUIRED = none), validator."""

    name: str
    type: ConfigType
    default: Any = None
    validator: Validator | None = None
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def parse(self, raw: Any) -> Any:
        """Kafka-style text (or an already typed value) -> typed value; ConfigError if bad."""
        value = parse_typed(self.type, raw, self.name)
        if self.validator is not None:
            problem = self.validator.check(value)
            if problem is not None:
                raise ConfigError(_invalid(self.name, raw, problem))
        return value

    def default_string(self) -> str | None:
        return None if self.default is REQUIRED else to_string(self.type, self.default)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 2**63 else repr(x)


def _invalid(name: str, raw: Any, expected: str) -> str:
    shown = raw if not isinstance(raw, str) else raw.strip()
    return f"Invalid value '{shown}' for configuration '{name}': {expected}"


_TYPE_TEXT = {
    ConfigType.BOOLEAN: "expected true or false (BOOLEAN)",
    ConfigType.INT: f"expected a whole number between {INT32_MIN} and {INT32_MAX} (INT)",
    ConfigType.SHORT: f"expected a whole number between {INT16_MIN} and {INT16_MAX} (SHORT)",
    ConfigType.LONG: f"expected a whole number between {INT64_MIN} and {INT64_MAX} (LONG)",
    ConfigType.DOUBLE: "expected a decimal number (DOUBLE)",
    ConfigType.STRING: "expected a string (STRING)",
    ConfigType.LIST: "expected a comma-separated list (LIST)",
    ConfigType.CLASS: "expected a class name (CLASS)",
    ConfigType.PASSWORD: "expected a string (PASSWORD)",
}
_INT_BOUNDS = {
    ConfigType.INT: (INT32_MIN, INT32_MAX),
    ConfigType.SHORT: (INT16_MIN, INT16_MAX),
    ConfigType.LONG: (INT64_MIN, INT64_MAX),
}


def parse_typed(ctype: ConfigType, raw: Any, name: str = "?") -> Any:
    """Parse like Kafka's ConfigDef.parseType: trimmed strings, "true"/"false", comma lists."""
    if raw is None:
        return None
    bad = ConfigError(_invalid(name, raw, _TYPE_TEXT.get(ctype, "a valid value")))
    if ctype is ConfigType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        raise bad
    if ctype in _INT_BOUNDS:
        lo, hi = _INT_BOUNDS[ctype]
        if isinstance(raw, bool):
            raise bad
        if isinstance(raw, int):
            value = raw
        elif isinstance(raw, str) and _INT_RE.fullmatch(raw.strip()):
            value = int(raw.strip())
        else:
            raise bad
        if not lo <= value <= hi:
            raise bad
        return value
    if ctype is ConfigType.DOUBLE:
        if isinstance(raw, bool):
            raise bad
        if isinstance(raw, (int, float)):
            return float(raw)
        if isinstance(raw, str) and _DOUBLE_RE.fullmatch(raw.strip()):
            text = raw.strip().rstrip("dDfF").replace("Infinity", "inf")
            return float(text)
        raise bad
    if ctype is ConfigType.LIST:
        if isinstance(raw, (list, tuple)):
            return [str(x).strip() for x in raw]
        if isinstance(raw, str):
            text = raw.strip()
            return [] if not text else _LIST_SPLIT.split(text)
        raise bad
    if isinstance(raw, str):
        return raw.strip()
    raise bad


def java_double(value: float) -> str:
    """Format a float as Java's Double.toString does (0.5, 1.0, 1.7976931348623157E308)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        text = repr(float(value))
        return text if "e" not in text else f"{value:.1f}"
    mantissa, exponent = f"{value:.16e}".split("e")
    mantissa = repr(float(mantissa))
    return f"{mantissa}E{int(exponent)}"


def to_string(ctype: ConfigType, value: Any) -> str | None:
    """Typed value -> Kafka's string form (ConfigDef.convertToString); None stays None."""
    if value is None:
        return None
    if ctype is ConfigType.BOOLEAN or isinstance(value, bool):
        return "true" if value else "false"
    if ctype is ConfigType.LIST or isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if ctype is ConfigType.DOUBLE:
        return java_double(float(value))
    return str(value)


@attrs.define(slots=True)
class ConfigDef:
    """An ordered set of ConfigKeys with bulk parsing."""

    keys: dict[str, ConfigKey] = attrs.Factory(dict)

    def define(self, name: str, ctype: ConfigType, default: Any = None,
               validator: Validator | None = None, doc: str = "") -> ConfigDef:
        if name in self.keys:
            raise ValueError(f"config {name} defined twice")
        if default is not None and default is not REQUIRED:
            default = parse_typed(ctype, default, name)
        self.keys[name] = ConfigKey(name, ctype, default, validator, doc)
        return self

    def __contains__(self, name: object) -> bool:
        return name in self.keys

    def __getitem__(self, name: str) -> ConfigKey:
        return self.keys[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys)

    def get(self, name: str) -> ConfigKey | None:
        return self.keys.get(name)

    def names(self) -> Iterable[str]:
        return self.keys.keys()

    def type_of(self, name: str) -> ConfigType:
        key = self.keys.get(name)
        return key.type if key else ConfigType.UNKNOWN

    def default_strings(self) -> dict[str, str]:
        """Non-null defaults as strings (Kafka's "static default configs")."""
        out: dict[str, str] = {}
        for name, key in self.keys.items():
            text = key.default_string()
            if text is not None:
                out[name] = text
        return out

    def parse(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """Typed values for every defined key: given value, else default. Unknown keys are
        the caller's business (brokers and topics treat them differently)."""
        values: dict[str, Any] = {}
        for name, key in self.keys.items():
            if name in props:
                values[name] = key.parse(props[name])
            elif key.required:
                raise ConfigError(
                    f"Missing required configuration '{name}' which has no default value")
            else:
                values[name] = key.default
        return values
