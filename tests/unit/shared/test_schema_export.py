"""The committed JSON Schemas and AsyncAPI document are what the models generate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from shared import schema_export
from shared.events import EVENT_MODELS
from shared.topics import ALL_TOPICS

pytestmark = pytest.mark.unit


def test_schema_files_are_fresh() -> None:
    stale = schema_export.check(schema_export.REPO_ROOT)
    assert stale == [], f"stale generated files {stale}: run python -m shared.schema_export"


def test_export_to_empty_dir_then_check(tmp_path: Path) -> None:
    assert schema_export.main(["--check", "--root", str(tmp_path)]) == 1
    written = schema_export.write(tmp_path)
    assert len(written) == len(EVENT_MODELS) + 1
    assert schema_export.check(tmp_path) == []
    assert schema_export.main(["--check", "--root", str(tmp_path)]) == 0


def test_check_lists_edited_and_leftover_files(tmp_path: Path) -> None:
    schema_export.write(tmp_path)
    edited = tmp_path / "shared/schemas/order.placed.json"
    edited.write_text(edited.read_text() + " ", encoding="utf-8")
    (tmp_path / "shared/schemas/order.cancelled.json").write_text("{}\n", encoding="utf-8")
    assert schema_export.check(tmp_path) == [
        "shared/schemas/order.cancelled.json",
        "shared/schemas/order.placed.json",
    ]
    schema_export.write(tmp_path)
    assert schema_export.check(tmp_path) == []
    assert not (tmp_path / "shared/schemas/order.cancelled.json").exists()


def test_output_is_deterministic() -> None:
    assert schema_export.render() == schema_export.render()


def test_event_schema_shape() -> None:
    files = schema_export.render()
    schema = json.loads(files["shared/schemas/order.placed.json"])
    assert schema["properties"]["event_type"]["const"] == "order.placed"
    assert set(schema["required"]) >= {"event_id", "event_type", "occurred_at", "data"}
    line = schema["$defs"]["OrderLine"]["properties"]["net_amount_minor"]
    assert line["type"] == "integer" and line["minimum"] == 0


def test_asyncapi_document() -> None:
    document = yaml.safe_load(schema_export.render()[schema_export.ASYNCAPI_PATH])
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] == "Channelkeep events"
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {t.name for t in ALL_TOPICS} | {t.dlq for t in ALL_TOPICS}
    messages = document["components"]["messages"]
    assert {m["name"] for m in messages.values()} == set(EVENT_MODELS) | {"dead_letter"}
    schemas = document["components"]["schemas"]
    for message in messages.values():
        ref = message["payload"].get("$ref")
        if ref:
            assert ref.removeprefix("#/components/schemas/") in schemas
    # Every internal reference resolves.
    text = schema_export.render()[schema_export.ASYNCAPI_PATH]
    for line in text.splitlines():
        if "$ref:" in line:
            pointer = line.split("$ref:")[1].strip().strip("'").removeprefix("#/").split("/")
            node = document
            for step in pointer:
                node = node[step]
    actions = {(op["action"], op["channel"]["$ref"]) for op in document["operations"].values()}
    assert ("receive", "#/channels/checkout_orders_v1") in actions
    assert ("send", "#/channels/commissions_ledger_v1") in actions
    assert ("send", "#/channels/checkout_orders_v1_dlq") in actions
