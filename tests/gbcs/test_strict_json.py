"""gbcs.strict_json: json.loads, but a key given twice in one object is an error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gbcs import strict_json

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=20,
)


@given(_json)
def test_json_without_repeated_keys_reads_as_json_loads_reads_it(value: Any) -> None:
    text = json.dumps(value)
    assert strict_json.loads(text) == json.loads(text) == value


@pytest.mark.parametrize(
    ("text", "key"),
    [('{"a": 1, "a": 1}', "a"), ('[{"x": {"b": 2, "c": 3, "b": 4}}]', "b")],
)
def test_a_key_given_twice_anywhere_is_named(text: str, key: str) -> None:
    with pytest.raises(strict_json.DuplicateKeyError, match=f"key '{key}' is given twice"):
        strict_json.loads(text)
    assert isinstance(strict_json.DuplicateKeyError(""), ValueError)  # callers catch these
