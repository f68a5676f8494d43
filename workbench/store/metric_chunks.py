"""The packed form of metric points: chunks of CHUNK points of one series.

A series' points `[c * CHUNK, (c + 1) * CHUNK)` are one row of `metric_chunks`
(the last chunk may hold fewer, until appends fill it: see
`workbench.store.metrics`). A chunk row carries the chunk's summary (count,
first and last step, last time, min, max, exact sum, how many points have a
value, last value) and three BLOBs, each a format byte followed by its
payload, little-endian whatever the machine:

  steps  b"r": two int64, first and stride: point i's step is first + i * stride
               (steps logged as a progression: 0, 1, 2... or 10, 20, 30...)
         b"q": one int64 per point
         b"n": no point has a step (no payload)
         b"m": one int64 per point (0 where missing), then a bitmap of
               ceil(count / 8) bytes, bit i (least significant first) set
               when point i has a step
  ts     b"d": one IEEE-754 float64 per point
  vals   b"d": one float64 per point; NaN where the point has no value

So a chunk can be read anywhere (`numpy.frombuffer(blob[1:], "<f8")`), and
the views `metrics` and `metric_points` decode chunks in plain SQL (`VIEWS`),
without a function registered on the connection: `sqlite3 workbench.db` or
any other SQLite client reads points the same way the store did before chunks.
The workbench itself never reads through the views (their SQL decoding costs
microseconds a point); it decodes BLOBs here, a memory copy per chunk.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Sequence
from typing import cast

CHUNK = 1024  # points of a full chunk; the views' SQL below is written for this size

STEPS_RANGE = b"r"
STEPS_INT64 = b"q"
STEPS_NONE = b"n"
STEPS_MASKED = b"m"
FLOAT64 = b"d"

_BIG_ENDIAN = sys.byteorder == "big"
_INT64_MAX = 2**63 - 1
_NAN = math.nan


def _packed(typecode: str, values: Sequence) -> bytes:
    packed = array(typecode, values)
    if _BIG_ENDIAN:
        packed.byteswap()
    return packed.tobytes()


def _unpacked(typecode: str, payload: bytes | memoryview) -> list:
    out = array(typecode)
    out.frombytes(payload)
    if _BIG_ENDIAN:
        out.byteswap()
    return out.tolist()


def pack_steps(steps: Sequence[int | None]) -> bytes:
    """The steps BLOB (see the module docstring)."""
    try:  # a None step raises TypeError (an arithmetic on it, or the int64 array)
        whole = cast(Sequence[int], steps)
        stride = _stride(whole)
        if stride is not None:
            return STEPS_RANGE + _packed("q", (whole[0], stride))
        return STEPS_INT64 + _packed("q", whole)
    except TypeError:
        if None not in steps:
            raise  # not a None: a step that is no int
    present = [s is not None for s in steps]
    if not any(present):
        return STEPS_NONE
    bits = bytearray((len(steps) + 7) // 8)
    for i, here in enumerate(present):
        if here:
            bits[i >> 3] |= 1 << (i & 7)
    return STEPS_MASKED + _packed("q", [0 if s is None else s for s in steps]) + bytes(bits)


def _stride(steps: Sequence[int]) -> int | None:
    """The stride of steps that form a progression, or None. Only one whose
    offsets `i * stride` fit in an int64 (the views compute them in SQL)."""
    first, n = steps[0], len(steps)
    stride = steps[1] - first if n > 1 else 0
    if steps[-1] - first != (n - 1) * stride or abs((n - 1) * stride) > _INT64_MAX:
        return None
    expected = range(first, first + n * stride, stride) if stride else [first] * n
    same = steps == (list(expected) if isinstance(steps, list) else tuple(expected))
    return stride if same else None


def unpack_steps(blob: bytes, count: int) -> list[int | None]:
    kind = blob[:1]
    if kind == STEPS_NONE:
        return [None] * count
    if kind == STEPS_RANGE:
        first, stride = _unpacked("q", memoryview(blob)[1:17])
        return list(range(first, first + count * stride, stride)) if stride else [first] * count
    body = memoryview(blob)[1 : 1 + 8 * count]
    steps: list[int | None] = _unpacked("q", body)
    if kind == STEPS_INT64:
        return steps
    if kind != STEPS_MASKED:
        raise ValueError(f"unknown steps format {kind!r}")
    bits = blob[1 + 8 * count :]
    return [s if bits[i >> 3] >> (i & 7) & 1 else None for i, s in enumerate(steps)]


def pack_floats(values: Sequence[float]) -> bytes:
    return FLOAT64 + _packed("d", values)


def pack_values(values: Sequence[float | None]) -> bytes:
    """The vals BLOB: None becomes NaN."""
    try:  # the array refuses a None: no separate scan for one
        packed = array("d", cast(Sequence[float], values))
    except TypeError:
        packed = array("d", [_NAN if v is None else v for v in values])
    if _BIG_ENDIAN:
        packed.byteswap()
    return FLOAT64 + packed.tobytes()


def unpack_floats(blob: bytes) -> list[float]:
    if blob[:1] != FLOAT64:
        raise ValueError(f"unknown float format {blob[:1]!r}")
    return _unpacked("d", memoryview(blob)[1:])


def unpack_values(blob: bytes, all_valued: bool) -> list[float | None]:
    """The vals BLOB's values, NaN read back as None (`all_valued`: the chunk's
    summary says no point lacks a value, so there is no NaN to look for)."""
    values: list = unpack_floats(blob)
    if all_valued:
        return values
    return [None if v != v else v for v in values]


# -- the views: the same decoding in plain SQL -------------------------------------------

# Every byte value once: `instr(_BYTES, one_byte_blob) - 1` is that byte's value
# (SQLite has no other built-in that reads a number from a BLOB).
_BYTES = "X'" + bytes(range(256)).hex() + "'"


def _byte(blob: str, at: str) -> str:
    return f"(instr(z.b, substr({blob}, {at}, 1)) - 1)"


def _int64(blob: str, at: str) -> str:
    """The little-endian int64 at 1-based byte position `at` of `blob`. (Each
    term in parentheses: in SQLite `<<` and `|` bind equally tight.)"""
    return "(" + " | ".join(f"({_byte(blob, f'{at} + {k}')} << {8 * k})" for k in range(8)) + ")"


def _exponent(blob: str, at: str) -> str:
    """The 11-bit exponent of the float64 at `at`, as the scale table's key
    (subnormals, exponent 0, scale like exponent 1)."""
    high = _byte(blob, f"{at} + 7")
    return f"max(1, (({high} & 127) << 4) | ({_byte(blob, f'{at} + 6')} >> 4))"


def _float64(blob: str, at: str, scale: str) -> str:
    """The float64 at `at`, exactly: sign * (mantissa with its hidden bit) *
    2^(exponent - 1075), the power of two read from the `scale` table, which has
    no row for exponent 2047 (NaN and infinities): NULL."""
    high = _byte(blob, f"{at} + 7")
    low = " | ".join(f"({_byte(blob, f'{at} + {k}')} << {8 * k})" for k in range(6))
    exponent = f"({high} & 127) << 4 | ({_byte(blob, f'{at} + 6')} >> 4)"
    hidden = f"(CASE WHEN {exponent} = 0 THEN 0 ELSE 4503599627370496 END)"
    mantissa = f"(({_byte(blob, f'{at} + 6')} & 15) << 48 | {low})"
    sign = f"(CASE WHEN {high} >= 128 THEN -1.0 ELSE 1.0 END)"
    return f"{sign} * ({mantissa} + {hidden}) * {scale}.v"


def _step(i: str) -> str:
    at = f"2 + 8 * {i}"
    bit = _byte("c.steps", f"2 + 8 * c.count + ({i} >> 3)")
    return (
        f"CASE substr(c.steps, 1, 1)"
        f" WHEN X'72' THEN {_int64('c.steps', '2')} + {i} * {_int64('c.steps', '10')}"
        f" WHEN X'71' THEN {_int64('c.steps', at)}"
        f" WHEN X'6d' THEN CASE WHEN ({bit} >> ({i} & 7)) & 1 THEN {_int64('c.steps', at)} END END"
    )


def _chunk_points(head: str, source: str) -> str:
    """One SELECT of the points of the chunks in `source` (`c` the chunk)."""
    ts_at, value_at = "2 + 8 * slot.i", "2 + 8 * slot.i"
    return (
        f"SELECT {head} c.chunk * {CHUNK} + slot.i AS idx, {_step('slot.i')} AS step,"
        f" {_float64('c.ts', ts_at, 'ts_scale')} AS ts,"
        f" {_float64('c.vals', value_at, 'value_scale')} AS value"
        f" FROM {source} JOIN slot ON slot.i < c.count CROSS JOIN z"
        f" LEFT JOIN scale ts_scale ON ts_scale.e = {_exponent('c.ts', ts_at)}"
        f" LEFT JOIN scale value_scale ON value_scale.e = {_exponent('c.vals', value_at)}"
    )


# slot: the point numbers within a chunk; scale: 2^(e - 1075) for every finite
# exponent e, built by exact doubling and halving from 1.0; z: the byte table.
_HELPERS = f"""WITH RECURSIVE
    slot(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM slot WHERE i < {CHUNK - 1}),
    scale(e, v) AS (
        SELECT 1075, 1.0
        UNION ALL SELECT e + 1, v * 2.0 FROM scale WHERE e BETWEEN 1075 AND 2045
        UNION ALL SELECT e - 1, v * 0.5 FROM scale WHERE e BETWEEN 2 AND 1075),
    z(b) AS (SELECT {_BYTES})
"""

METRICS_VIEW = (
    "CREATE VIEW metrics AS\n"
    + _HELPERS
    + _chunk_points("c.series_id,", "metric_chunks c")
)

METRIC_POINTS_VIEW = (
    "CREATE VIEW metric_points AS\n"
    + _HELPERS
    + _chunk_points(
        "s.run_id, s.key,", "metric_series s JOIN metric_chunks c ON c.series_id = s.id"
    )
)
