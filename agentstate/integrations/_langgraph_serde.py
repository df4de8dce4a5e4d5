"""The saver's ``serde`` calls: checkpoints and writes to a type tag and bytes, and back, with
what it raises turned into agentstate's errors."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

from agentstate import errors


def _dump(serde: SerializerProtocol, what: str, value: Any) -> tuple[str, bytes]:
    try:
        return serde.dumps_typed(value)
    except Exception as exc:  # whatever the serde raises, the value came from the caller
        raise errors.InvalidValueError(f"{what} cannot be serialised by {type(serde).__name__}: {exc}") from exc


def _load(serde: SerializerProtocol, what: str, type_: str, blob: bytes) -> Any:
    try:
        return serde.loads_typed((type_, blob))
    except Exception as exc:
        raise errors.AgentStateError(
            f"a stored {what} cannot be read back by {type(serde).__name__} ({exc}); was it written with another serde?"
        ) from exc
