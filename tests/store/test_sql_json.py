"""The store's direct JSON of text maps (activation metadata, audit detail) is json.dumps' text."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from offline_service.store.sql._base import text_map_json


@given(st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=5))
def test_text_map_json_is_what_json_dumps_writes(items: dict[str, str]) -> None:
    assert text_map_json(items) == json.dumps(items)
