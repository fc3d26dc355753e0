"""JSON as users hand it to the kit: a key given twice in one object is refused.

``json.loads`` keeps the last of two equal keys and drops the first without a word
(RFC 8259 says only that names SHOULD be unique); for a message to encode or a saved
world, the dropped value may be the one the user meant.
"""

from __future__ import annotations

import json
from typing import Any


class DuplicateKeyError(ValueError):
    """A key given twice in one JSON object."""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise DuplicateKeyError(f"key {key!r} is given twice in one object")
        obj[key] = value
    return obj


def loads(text: str) -> Any:
    """``json.loads`` but for duplicate keys (a :class:`DuplicateKeyError`, a ValueError)."""
    return json.loads(text, object_pairs_hook=_unique)
