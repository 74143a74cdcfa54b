"""The typed engine configs cannot drift from the JSON Schemas generated from @eaglet/core's zod
schemas: the dataclass fields are the schema's properties (snake_case of its camelCase), nested
objects are nested dataclasses, optional properties are the fields that may be None; and the
loader fills what a hand-written config omits from the schema's own defaults."""

from __future__ import annotations

import dataclasses
import types
import typing

import pytest

from eaglet_engine import config
from eaglet_engine.config import TYPED, camel, dataclass_of, field_types
from eaglet_engine.errors import ConfigError


def _optional(tp) -> bool:
    return (isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union) and type(None) in typing.get_args(tp)


def _check(cls: type, node: dict, where: str) -> None:
    fields = field_types(cls)
    assert {camel(name) for name in fields} == set(node["properties"]), f"{where}: {cls.__name__} fields vs schema properties"
    required = set(node.get("required", []))
    for name, tp in fields.items():
        key = camel(name)
        sub = node["properties"][key]
        assert _optional(tp) == (key not in required), f"{where}.{key}: optional in one, required in the other"
        nested = dataclass_of(tp)
        item = typing.get_args(tp)[0] if typing.get_origin(tp) is tuple else None
        if nested is not None:
            _check(nested, sub, f"{where}.{key}")
        elif item is not None and dataclasses.is_dataclass(item):
            assert sub["type"] == "array", f"{where}.{key}"
            _check(item, sub["items"], f"{where}.{key}[]")
        else:
            assert "properties" not in sub or typing.get_origin(tp) is dict, f"{where}.{key}: an object in the schema, {tp} here"


@pytest.mark.parametrize("name", sorted(TYPED))
def test_typed_configs_match_their_json_schema_recursively(name):
    _check(TYPED[name], config.schema(name), name)


def test_the_loader_fills_omitted_fields_from_the_schema_defaults_only():
    target = {"id": "t", "adapter": "m", "model": "/m", "architecture": "A", "auxLayerIds": [2, 4, 5]}
    cfg = config.parse({"target": target}, "generation")
    schema = config.schema("generation")["properties"]
    assert cfg.num_spec_tokens == schema["numSpecTokens"]["default"]
    assert cfg.max_model_len == schema["maxModelLen"]["default"]
    assert cfg.device == schema["device"]["default"] and cfg.draft_model is None
    assert cfg.target.aux_layer_ids == (2, 4, 5) and cfg.target.audio_token_id is None
    assert config.to_dict(cfg)["target"] == target  # back to the JSON shape
    # nested objects and arrays of objects get their defaults too
    req = config.parse({"op": "generate", "id": "a", "inputIds": [1], "maxTokens": 2, "audio": [{"pcm": ""}]}, "generate-request")
    assert req.temperature == 0 and req.top_p == 1 and req.stop_token_ids == () and req.audio[0].pcm == ""
    with pytest.raises(ConfigError, match="maxTokens"):
        config.parse({"op": "generate", "id": "a", "inputIds": [1]}, "generate-request")
