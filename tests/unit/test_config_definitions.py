"""ConfigDef parsing/formatting and the .properties reader."""
from __future__ import annotations

import pytest

from kafkapy.config.definitions import (
    DOUBLE_MAX,
    LONG_MAX,
    ConfigDef,
    ConfigError,
    ConfigKey,
    ConfigType,
    OneOf,
    Range,
    parse_typed,
    to_string,
)
from kafkapy.config.properties import load_properties, parse_properties

pytestmark = pytest.mark.unit
T = ConfigType


@pytest.mark.parametrize("raw,expected", [
    ("true", True), ("FALSE", False), (" True ", True), (True, True), (False, False)])
def test_boolean_parsing(raw, expected):
    assert parse_typed(T.BOOLEAN, raw, "k") is expected


def test_boolean_rejects_other_words():
    with pytest.raises(ConfigError, match=r"Invalid value 'yes' for configuration 'x': "
                                          r"expected true or false"):
        parse_typed(T.BOOLEAN, "yes", "x")


@pytest.mark.parametrize("ctype,raw,expected", [
    (T.INT, "-1", -1), (T.INT, "+5", 5), (T.INT, " 42 ", 42), (T.INT, 7, 7),
    (T.SHORT, "32767", 32767), (T.LONG, str(LONG_MAX), LONG_MAX),
])
def test_integer_parsing(ctype, raw, expected):
    assert parse_typed(ctype, raw, "k") == expected


@pytest.mark.parametrize("ctype,raw", [
    (T.INT, "2147483648"), (T.INT, "1_000"), (T.INT, "1.5"), (T.INT, ""), (T.INT, True),
    (T.SHORT, "32768"), (T.LONG, str(LONG_MAX + 1)), (T.INT, "0x10"),
])
def test_integer_rejections(ctype, raw):
    with pytest.raises(ConfigError, match="configuration 'k'"):
        parse_typed(ctype, raw, "k")


def test_int_error_names_type_and_bounds():
    with pytest.raises(ConfigError) as err:
        parse_typed(T.INT, "abc", "log.segment.bytes")
    assert str(err.value) == ("Invalid value 'abc' for configuration 'log.segment.bytes': "
                              "expected a whole number between -2147483648 and 2147483647 (INT)")


@pytest.mark.parametrize("raw,expected", [
    ("a, b ,c", ["a", "b", "c"]), ("", []), ("  ", []), ("single", ["single"]),
    (["x", " y"], ["x", "y"]),
])
def test_list_parsing(raw, expected):
    assert parse_typed(T.LIST, raw, "k") == expected


@pytest.mark.parametrize("raw,expected", [("0.5", 0.5), ("1e3", 1000.0), ("2", 2.0), (3, 3.0)])
def test_double_parsing(raw, expected):
    assert parse_typed(T.DOUBLE, raw, "k") == expected


def test_double_rejects_python_only_spellings():
    for raw in ("1_0", "inf", "half"):
        with pytest.raises(ConfigError):
            parse_typed(T.DOUBLE, raw, "k")


@pytest.mark.parametrize("ctype,value,text", [
    (T.BOOLEAN, True, "true"), (T.LIST, ["delete", "compact"], "delete,compact"),
    (T.LIST, [], ""), (T.DOUBLE, 0.5, "0.5"), (T.DOUBLE, 1.0, "1.0"),
    (T.DOUBLE, DOUBLE_MAX, "1.7976931348623157E308"), (T.LONG, -1, "-1"), (T.INT, None, None),
])
def test_to_string_matches_kafka(ctype, value, text):
    assert to_string(ctype, value) == text


def test_validators_explain_the_expectation():
    key = ConfigKey("segment.bytes", T.INT, 100, Range(min=14))
    with pytest.raises(ConfigError, match="'5' for configuration 'segment.bytes': "
                                          "value must be at least 14"):
        key.parse("5")
    ratio = ConfigKey("ratio", T.DOUBLE, 0.5, Range(0, 1))
    with pytest.raises(ConfigError, match="between 0 and 1"):
        ratio.parse("1.1")
    policy = ConfigKey("cleanup.policy", T.LIST, "delete", OneOf(("compact", "delete")))
    assert policy.parse("compact,delete") == ["compact", "delete"]
    with pytest.raises(ConfigError, match=r"'bogus' is not one of \[compact, delete\]"):
        policy.parse("delete,bogus")


def test_configdef_parse_defaults_and_required():
    d = ConfigDef()
    d.define("a", T.INT, 1).define("b", T.STRING, None).define("c", T.LIST, "x,y")
    assert d.parse({"a": "2"}) == {"a": 2, "b": None, "c": ["x", "y"]}
    assert d.default_strings() == {"a": "1", "c": "x,y"}
    from kafkapy.config.definitions import REQUIRED
    d.define("zk", T.STRING, REQUIRED)
    with pytest.raises(ConfigError, match="Missing required configuration 'zk'"):
        d.parse({})
    with pytest.raises(ValueError):
        d.define("a", T.INT, 3)


def test_properties_syntax_like_java():
    text = (
        "# comment\n"
        "! also a comment\n"
        "a=1\n"
        "  b : 2\n"
        "c 3\n"
        "d=first\\\n"
        "    second\n"
        "e=\\u0041\\=\\:x\n"
        "f\n"
        "g=x=y\n"
        "a=again\n"
        "h = spaced value \n"
    )
    assert parse_properties(text) == {
        "a": "again", "b": "2", "c": "3", "d": "firstsecond", "e": "A=:x", "f": "",
        "g": "x=y", "h": "spaced value ",
    }


def test_load_properties_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="Cannot read config file .*nope.properties"):
        load_properties(str(tmp_path / "nope.properties"))
