"""The JSON decoder every read uses agrees with json.loads, whatever the text's layout."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentstate.values import from_json, to_json


def json_trees(scalars: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
        max_leaves=20,
    )


scalars = st.none() | st.booleans() | st.integers() | st.text()
# json.dumps writes Infinity, which json.loads reads back; the library's encoder refuses it.
json_values = json_trees(scalars | st.floats(allow_nan=False))
storable_values = json_trees(scalars | st.floats(allow_nan=False, allow_infinity=False))


@given(json_values, st.sampled_from([None, 0, 2]), st.sampled_from(["", " ", "\n\t "]), st.sampled_from(["", " \n"]))
def test_from_json_agrees_with_json_loads(value: object, indent: int | None, before: str, after: str) -> None:
    text = before + json.dumps(value, indent=indent, ensure_ascii=False) + after
    assert from_json(text) == json.loads(text)


@given(storable_values)
def test_round_trip_through_the_library_encoder(value: object) -> None:
    assert from_json(to_json("value", value)) == value


@pytest.mark.parametrize("text", ["", "   ", "1 2", "{} []", '{"a": 1', "[1,]", "nul", '"\x01"'])
def test_from_json_refuses_what_json_loads_refuses(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        from_json(text)
    assert got.value.msg == expected.value.msg


def test_from_json_passes_none_through() -> None:
    assert from_json(None) is None
