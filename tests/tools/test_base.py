"""Tool plumbing: schemas, the registry, and bad arguments turned into readable errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from agentos.tools.base import Tool, ToolContext, ToolError, ToolInput, cap_text
from agentos.tools.registry import ALL_TOOLS, get_tools, schemas
from pydantic import Field

STABLE_NAMES = {
    "read_file", "write_file", "edit_file", "list_files", "search_files", "run_command",
    "git_status", "git_diff", "git_log", "git_commit", "browser_open", "browser_text",
    "browser_snapshot", "browser_click", "browser_fill", "browser_screenshot", "create_subtask",
    "send_message", "read_messages", "read_memory", "write_memory", "list_skills", "read_skill",
}  # fmt: skip


def test_the_names_role_configs_use_all_exist() -> None:
    assert set(ALL_TOOLS) == STABLE_NAMES


def test_every_schema_is_a_valid_function_definition() -> None:
    seen = set()
    for tool in ALL_TOOLS.values():
        entry = tool.schema()
        json.dumps(entry)  # serialisable as sent to the provider
        assert entry["type"] == "function"
        fn = entry["function"]
        assert fn["name"] == tool.name and fn["name"] not in seen
        seen.add(fn["name"])
        assert fn["description"].strip()
        params = fn["parameters"]
        assert params["type"] == "object"
        assert isinstance(params["properties"], dict)
        assert isinstance(params["required"], list)
        assert set(params["required"]) <= set(params["properties"])
        for name, prop in params["properties"].items():
            assert "title" not in prop, (tool.name, name)
            assert "type" in prop or "enum" in prop or "anyOf" in prop, (tool.name, name, prop)
            assert prop.get("description"), (tool.name, name)


def test_optional_fields_are_plain_types_in_the_schema() -> None:
    props = ALL_TOOLS["send_message"].schema()["function"]["parameters"]["properties"]
    assert props["to_agent"]["type"] == "string"
    assert props["kind"]["enum"] == ["comment", "status", "question", "answer", "review"]
    assert ALL_TOOLS["read_file"].schema()["function"]["parameters"]["required"] == ["path"]


def test_get_tools_keeps_order_and_rejects_unknown_names() -> None:
    tools = get_tools(["run_command", "read_file", "run_command"])
    assert [t.name for t in tools] == ["run_command", "read_file"]
    assert [s["function"]["name"] for s in schemas(tools)] == ["run_command", "read_file"]
    with pytest.raises(ValueError, match=r"unknown tool 'rm_rf' \(known: .*read_file"):
        get_tools(["read_file", "rm_rf"])


async def test_wrong_type_is_a_readable_error(ctx: ToolContext, call) -> None:
    r = await call(ctx, "read_file", {"path": "x", "start_line": "first"})
    assert not r.ok
    assert r.output.startswith("error: bad arguments for read_file:")
    assert "start_line: Input should be a valid integer" in r.output


async def test_missing_field_is_a_readable_error(ctx: ToolContext, call) -> None:
    r = await call(ctx, "write_file", {"path": "a.txt"})
    assert not r.ok and "content: Field required" in r.output


async def test_unknown_argument_is_named(ctx: ToolContext, call) -> None:
    r = await call(ctx, "read_file", {"path": "a", "encoding": "latin-1"})
    assert not r.ok and "encoding: unknown argument" in r.output


async def test_bad_json_and_non_objects(ctx: ToolContext, call) -> None:
    r = await call(ctx, "read_file", '{"path": ')
    assert not r.ok and "not valid JSON" in r.output
    r = await call(ctx, "read_file", "[1, 2]")
    assert not r.ok and "must be a JSON object, not list" in r.output
    r = await call(ctx, "git_status", "")  # empty arguments mean {}
    assert "bad arguments" not in r.output


async def test_json_string_arguments_are_parsed(ctx: ToolContext, worktree: Path, call) -> None:
    (worktree / "a.txt").write_text("one\n")
    r = await call(ctx, "read_file", json.dumps({"path": "a.txt"}))
    assert r.ok and "one" in r.output


class _In(ToolInput):
    n: int = Field(default=0, description="n")


async def _boom(ctx: ToolContext, args: _In) -> str:
    raise KeyError("surprise")


async def _slow(ctx: ToolContext, args: _In) -> str:
    await asyncio.sleep(10)
    return "late"


async def _refuse(ctx: ToolContext, args: _In) -> str:
    raise ToolError("no, because")


async def _long(ctx: ToolContext, args: _In) -> str:
    return "x" * 50_000


async def test_unexpected_exceptions_timeouts_and_tool_errors_never_raise(
    ctx: ToolContext,
) -> None:
    r = await Tool("boom", "d", _In, _boom).call(ctx, {})
    assert not r.ok and r.output == "error: boom failed unexpectedly: KeyError 'surprise'"
    r = await Tool("slow", "d", _In, _slow, timeout=0.1).call(ctx, {})
    assert not r.ok and r.output == "error: slow timed out after 0.1 s"
    r = await Tool("refuse", "d", _In, _refuse).call(ctx, {})
    assert r == r.__class__(False, "error: no, because")


async def test_output_is_capped(ctx: ToolContext) -> None:
    ctx.output_cap = 1000
    r = await Tool("long", "d", _In, _long).call(ctx, {})
    assert r.ok and len(r.output) < 1100 and "characters cut" in r.output


def test_cap_text_keeps_head_and_tail() -> None:
    text = "A" * 100 + "B" * 100
    out = cap_text(text, 30)
    assert out.startswith("A" * 20) and out.endswith("B" * 10) and "170 characters cut" in out
    assert cap_text("short", 30) == "short"


def test_nested_models_are_refused_for_tool_inputs() -> None:
    class Inner(ToolInput):
        a: int

    class Outer(ToolInput):
        inner: Inner

    with pytest.raises(TypeError, match="flat"):
        Tool("nested", "d", Outer, _boom).schema()
