"""Values at the edge between Python and SQLite: timestamps, ids, JSON and argument checks."""

from __future__ import annotations

import functools
import json
import os
import re
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from json.encoder import c_encode_basestring, c_make_encoder  # type: ignore[attr-defined]
from typing import Any

from agentstate import errors

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_now() -> str:
    """Now, as the fixed-width UTC text every timestamp column holds (microsecond precision)."""
    return format_time(time.time_ns() // 1000)


def format_time(epoch_us: int) -> str:
    """Microseconds since the epoch as 'YYYY-MM-DDTHH:MM:SS.ffffffZ'; this text sorts by time."""
    second, fraction = divmod(epoch_us, 1_000_000)
    return f"{_second_prefix(second)}{fraction:06d}Z"


def format_datetime(value: datetime) -> str:
    """An aware datetime in the stored form, the year always four digits (strftime does not pad
    years before 1000 everywhere, and '999-...' would sort after '2026-...')."""
    v = value.astimezone(UTC)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}Z"
    )


# Every append and transition stamps a time, and claims a lease expiry too; strftime of the whole
# date costs ~8 us, so each second's 'YYYY-MM-DDTHH:MM:SS.' is formatted once (~1 us a call).
@functools.lru_cache(maxsize=256)
def _second_prefix(second: int) -> str:
    return (_EPOCH + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%S.")


def utc_after(seconds: float) -> str:
    """The timestamp ``seconds`` from now (callers bound ``seconds`` with :func:`require_seconds`)."""
    return format_time(time.time_ns() // 1000 + round(seconds * 1_000_000))


def parse_time(text: str) -> datetime:
    """A stored timestamp back as an aware datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


# Exactly the stored form: strptime alone also takes '2024-1-5T10:00:00.0Z', which does not sort.
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", re.ASCII)


def as_timestamp(name: str, value: datetime | str) -> str:
    """Accept an aware datetime or a stored-form timestamp string for a time-range argument."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise errors.InvalidValueError(f"{name} must be timezone-aware (e.g. datetime.now(timezone.utc))")
        try:
            return format_datetime(value)
        except OverflowError:  # astimezone past year 1 or 9999
            raise errors.InvalidValueError(f"{name} {value!r} is out of range") from None
    if isinstance(value, str):
        if _TIMESTAMP.fullmatch(value):
            try:
                parse_time(value)
                return value
            except ValueError:
                pass
        raise errors.InvalidValueError(
            f"{name} {value!r:.80} is not a 'YYYY-MM-DDTHH:MM:SS.ffffffZ' timestamp (zero-padded, six "
            "fraction digits, UTC): pass an aware datetime instead"
        )
    raise errors.InvalidTypeError(f"{name} must be a datetime or a timestamp string, not {type(value).__name__}")


def new_id() -> str:
    """A 32-hex-character id that sorts by creation time (48-bit ms clock + 80 random bits).

    Time-ordered ids append to the end of the primary-key b-tree instead of splitting pages
    all over it, which keeps inserts fast at millions of rows. Within one millisecond a process
    counts up from its last id (as monotonic ULIDs do), so ids made in a row also sort in order.
    """
    global _last_id
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        last_ms, last_random = _last_id
        if ms <= last_ms:
            ms, random = last_ms, last_random + 1
        else:
            random = int.from_bytes(os.urandom(10)) >> 1  # headroom to count up
        _last_id = (ms, random)
    return f"{ms:012x}{random:020x}"


_last_id: tuple[int, int] = (0, 0)
_id_lock = threading.Lock()


def _forget_last_id() -> None:
    global _last_id
    _last_id = (0, 0)  # a forked child must not count on from its parent's ids


os.register_at_fork(after_in_child=_forget_last_id)


def _not_json(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# json.dumps(value, **options) builds a new encoder on every call, which costs more than encoding
# a small object; so build the C encoder once (compact, non-ASCII kept, NaN refused). With no
# markers dict it keeps no state between calls, so threads may share it; a reference cycle then
# ends in RecursionError rather than "Circular reference detected".
_C_ENCODE = (
    c_make_encoder(None, _not_json, c_encode_basestring, None, ":", ",", False, False, False)
    if c_make_encoder is not None and c_encode_basestring is not None
    else None
)


def to_json(name: str, value: Any) -> str:
    """Encode a JSON column; a value JSON cannot represent raises InvalidValueError naming it."""
    try:
        if _C_ENCODE is not None:
            encoded = "".join(_C_ENCODE(value, 0))
        else:
            encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise errors.InvalidValueError(f"{name} is not JSON-serialisable: {exc}") from exc
    return text(name, encoded)


def canonical_json(encoded: str) -> str:
    """Stored JSON text in one canonical form (sorted keys, no spaces), for comparing values
    exactly: ``true`` and ``1``, or ``1`` and ``1.0``, stay different, as they do in JSON."""
    return json.dumps(json.loads(encoded), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


# json.loads spends ~2 us per call outside the parser (two whitespace regex matches and a
# Python-level decode); reading one task decodes five columns. The C scanner behind it parses a
# value that starts at index 0 directly. It is the same object json.loads shares between threads.
_scan_json = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def from_json(text: str | None) -> Any:
    """Decode a JSON column read back from the database."""
    if text is None:
        return None
    if text == "{}":  # the defaults of most JSON columns: skip the parser
        return {}
    if text == "[]":
        return []
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:  # leading whitespace (a value written by other SQL): the full parser
        return json.loads(text)
    if end != len(text):  # trailing whitespace, or more than one value: let json.loads judge
        return json.loads(text)
    return value


def text(name: str, value: str) -> str:
    """Check that a str can be stored: SQLite takes UTF-8, which has no lone surrogates."""
    if not value.isascii():  # the common case costs one C scan
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise errors.InvalidValueError(
                f"{name} holds a lone surrogate ({value[exc.start]!r} at index {exc.start}), which is not "
                "valid Unicode text; decode bytes with errors='replace' before storing them"
            ) from None
    return value


def short(value: object) -> str:
    """A value for an error message: its repr, cut to 40 characters (and safe for any int)."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def require_str(name: str, value: object) -> str:
    """Check an id or text argument: a non-empty str."""
    if not isinstance(value, str):
        raise errors.InvalidTypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value:
        raise errors.InvalidValueError(f"{name} must not be empty")
    if "\x00" in value:
        # SQLite's length() stops at a NUL, so the schema's length CHECKs would misjudge it.
        raise errors.InvalidValueError(f"{name} must not contain NUL characters")
    return text(name, value)


def iterable(name: str, value: object) -> Iterable[Any]:
    """Check a batch argument: any iterable but a str, bytes or dict (a common slip)."""
    if value is None or isinstance(value, (str, bytes, dict)) or not isinstance(value, Iterable):
        raise errors.InvalidTypeError(f"{name} must be a list (or other iterable) of items, not {type(value).__name__}")
    return value


def optional_str(name: str, value: object) -> str | None:
    """Like :func:`require_str`, but None is allowed."""
    return None if value is None else require_str(name, value)


def require_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """Check an integer argument (bool is refused: True is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.InvalidTypeError(f"{name} must be an int, not {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise errors.InvalidValueError(f"{name} must be at least {minimum}, got {short(value)}")
    if not -(2**63) <= value < 2**63:
        raise errors.InvalidValueError(f"{name} must fit in 64 bits, got {short(value)}")
    return value


# The longest duration taken: 100 years, so that now +/- it is always a representable timestamp.
MAX_SECONDS = 100 * 365 * 86400


def require_age(name: str, value: object) -> float:
    """Check an age in seconds: 0 (everything until now) to :data:`MAX_SECONDS`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        return 0.0
    return require_seconds(name, value)


def require_seconds(name: str, value: object) -> float:
    """Check a positive duration in seconds, at most :data:`MAX_SECONDS`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise errors.InvalidTypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not 0 < value <= MAX_SECONDS:  # NaN fails this too
        raise errors.InvalidValueError(
            f"{name} must be a positive number of seconds, at most {MAX_SECONDS:,} (100 years), got {short(value)}"
        )
    return float(value)
