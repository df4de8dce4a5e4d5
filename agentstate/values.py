"""Values at the edge between Python and SQLite: timestamps, ids, JSON and argument checks."""

from __future__ import annotations

import functools
import json
import os
import threading
import time
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


# Every append and transition stamps a time, and claims a lease expiry too; strftime of the whole
# date costs ~8 us, so each second's 'YYYY-MM-DDTHH:MM:SS.' is formatted once (~1 us a call).
@functools.lru_cache(maxsize=256)
def _second_prefix(second: int) -> str:
    return (_EPOCH + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%S.")


def utc_after(seconds: float) -> str:
    """The timestamp ``seconds`` from now."""
    return format_time(time.time_ns() // 1000 + round(seconds * 1_000_000))


def parse_time(text: str) -> datetime:
    """A stored timestamp back as an aware datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def as_timestamp(name: str, value: datetime | str) -> str:
    """Accept an aware datetime or a stored timestamp string for a time-range argument."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise errors.InvalidValueError(f"{name} must be timezone-aware (e.g. datetime.now(timezone.utc))")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, str):
        try:
            parse_time(value)
        except ValueError:
            raise errors.InvalidValueError(
                f"{name} {value!r} is not a 'YYYY-MM-DDTHH:MM:SS.ffffffZ' timestamp"
            ) from None
        return value
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
            return "".join(_C_ENCODE(value, 0))
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise errors.InvalidValueError(f"{name} is not JSON-serialisable: {exc}") from exc


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


def require_str(name: str, value: object) -> str:
    """Check an id or text argument: a non-empty str."""
    if not isinstance(value, str):
        raise errors.InvalidTypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value:
        raise errors.InvalidValueError(f"{name} must not be empty")
    if "\x00" in value:
        # SQLite's length() stops at a NUL, so the schema's length CHECKs would misjudge it.
        raise errors.InvalidValueError(f"{name} must not contain NUL characters")
    return value


def optional_str(name: str, value: object) -> str | None:
    """Like :func:`require_str`, but None is allowed."""
    return None if value is None else require_str(name, value)


def require_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """Check an integer argument (bool is refused: True is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.InvalidTypeError(f"{name} must be an int, not {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise errors.InvalidValueError(f"{name} must be at least {minimum}, got {value}")
    if not -(2**63) <= value < 2**63:
        raise errors.InvalidValueError(f"{name} must fit in 64 bits, got {value}")
    return value


def require_seconds(name: str, value: object) -> float:
    """Check a positive duration in seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise errors.InvalidTypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not value > 0 or value == float("inf"):
        raise errors.InvalidValueError(f"{name} must be a positive, finite number of seconds, got {value}")
    return float(value)
