"""A small language for the result shapes in core_fields.py, and the checker.

A shape is one of:

- a JSON type name: STR, HEX (a string of lowercase hex digits, as Core
  prints hashes and scripts), NUM (Core's "numeric": an integer or a decimal,
  never a boolean), INT (Dash's "number (int)"), BOOL, NULL;
- Obj({...}): an object with these keys. A key ending in "?" is optional
  (Core's "(…, optional)", Dash's "Optional (0 or 1)"): when present its
  value is checked, when absent nothing is reported. Keys the node returns
  beyond these are allowed (clients ignore them);
- Arr(shape): an array whose every item has that shape;
- Map(shape, key=regex): an object with arbitrary keys (txids, outpoints,
  heights), each value of that shape, each key matching the pattern;
- ByKey(name, present, absent): `present` when the object has key `name`,
  else `absent` (a coinbase input against a spending input).

check(value, shape, table) walks a result and returns a Mismatch for every
missing required field and every value of another type, each with the path
of the field: `vin[].scriptSig.asm`, `*.fees.base` (a value of a Map).
"""

import decimal
import re
from dataclasses import dataclass, field
from typing import Optional

STR = "string"
HEX = "hex string"
NUM = "number"
INT = "integer"
BOOL = "boolean"
NULL = "null"

_HEX_RE = re.compile(r"^[0-9a-f]*$")


@dataclass(frozen=True)
class Obj:
    fields: dict

    def __post_init__(self):
        for key in self.fields:
            assert isinstance(key, str) and key.strip("?"), key


@dataclass(frozen=True)
class Arr:
    item: object


@dataclass(frozen=True)
class Map:
    value: object
    key: Optional[str] = None  # a regex every key must match (fullmatch)
    key_doc: str = ""  # what the key is, for the mismatch message


@dataclass(frozen=True)
class ByKey:
    name: str
    present: object
    absent: object


@dataclass
class Mismatch:
    table: str  # the method (and variant) whose table the field is in
    path: str  # the field: `vin[].scriptSig.asm`
    expected: str
    got: str
    excepted: Optional[str] = field(default=None)  # the EXCEPTIONS reason

    def line(self):
        return f"{self.table}  {self.path or '(result)'}  expected {self.expected}  got {self.got}"


def json_type(value):
    """The JSON type of a decoded value, as the mismatch message names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, (float, decimal.Decimal)):
        return "decimal number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _scalar_ok(value, shape):
    if shape == STR:
        return isinstance(value, str)
    if shape == HEX:
        return isinstance(value, str) and bool(_HEX_RE.match(value))
    if shape == NUM:
        return isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool)
    if shape == INT:
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        # AuthServiceProxy decodes every JSON number with a fraction part or
        # an exponent as a Decimal: 5.0 is not an integer.
        return False
    if shape == BOOL:
        return isinstance(value, bool)
    if shape == NULL:
        return value is None
    raise ValueError(f"unknown shape {shape!r}")


def _describe(value):
    t = json_type(value)
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"{t} {shown!r}"
    if isinstance(value, (bool, int, float, decimal.Decimal)) or value is None:
        return f"{t} {json_dumps_scalar(value)}"
    return t


def json_dumps_scalar(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def shape_name(shape):
    if isinstance(shape, str):
        return shape
    if isinstance(shape, Obj):
        return "object"
    if isinstance(shape, Arr):
        return "array"
    if isinstance(shape, Map):
        return "object"
    if isinstance(shape, ByKey):
        return "object"
    raise ValueError(f"unknown shape {shape!r}")


def check(value, shape, table, path="", exceptions=None):
    """Every mismatch between `value` and `shape`. `exceptions` maps a path
    to the reason a missing field is not required on this chain."""
    exceptions = exceptions or {}
    out = []
    _check(value, shape, table, path, exceptions, out)
    return out


def _join(path, key):
    return f"{path}.{key}" if path else key


def _check(value, shape, table, path, exceptions, out):
    if isinstance(shape, str):
        if not _scalar_ok(value, shape):
            out.append(Mismatch(table, path, shape, _describe(value)))
        return
    if isinstance(shape, ByKey):
        if isinstance(value, dict) and shape.name in value:
            _check(value, shape.present, table, path, exceptions, out)
        else:
            _check(value, shape.absent, table, path, exceptions, out)
        return
    if isinstance(shape, Obj):
        if not isinstance(value, dict):
            out.append(Mismatch(table, path, "object", _describe(value)))
            return
        for raw_key, sub in shape.fields.items():
            optional = raw_key.endswith("?")
            key = raw_key.rstrip("?")
            sub_path = _join(path, key)
            if key not in value:
                if not optional:
                    out.append(
                        Mismatch(table, sub_path, shape_name(sub), "missing",
                                 excepted=exceptions.get(sub_path))
                    )
                continue
            _check(value[key], sub, table, sub_path, exceptions, out)
        return
    if isinstance(shape, Arr):
        if not isinstance(value, list):
            out.append(Mismatch(table, path, "array", _describe(value)))
            return
        for item in value:
            before = len(out)
            _check(item, shape.item, table, path + "[]", exceptions, out)
            if len(out) > before:
                # One bad item names the problem; the same fields of the
                # other items would repeat it.
                break
        return
    if isinstance(shape, Map):
        if not isinstance(value, dict):
            out.append(Mismatch(table, path, "object", _describe(value)))
            return
        pattern = re.compile(shape.key) if shape.key else None
        for key, item in value.items():
            if pattern and not pattern.fullmatch(key):
                out.append(
                    Mismatch(table, _join(path, "<key>"), f"key: {shape.key_doc or shape.key}",
                             f"key {key!r}")
                )
                break
        for item in value.values():
            before = len(out)
            _check(item, shape.value, table, _join(path, "*"), exceptions, out)
            if len(out) > before:
                break
        return
    raise ValueError(f"unknown shape {shape!r}")
