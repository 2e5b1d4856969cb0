"""Fake model servers for the executor tests: each speaks one CLI's wire API on 127.0.0.1.

A fake answers a conversation that has no tool result yet with one tool call that
writes FILE_NAME (the CLI's own write tool), and a conversation that has one with a
final message. It records every request (time, path, body) so tests can see what the
CLI sent (a resumed session carries the earlier tool call) and measure the overhead
around the model calls. `hold()` makes the next answers wait until `release()`, so a
test can cancel or kill an executor while it waits on the model.
"""

from __future__ import annotations

import json
import re
import shlex
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FILE_NAME = "hello.txt"
FILE_TEXT = "hello from the executor\n"
FINAL_TEXT = "I wrote hello.txt with a greeting."


@dataclass
class Request:
    """One request the CLI sent."""

    at: float
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: str


@dataclass
class FakeModel:
    """A fake model server; `api` is anthropic, responses, chat or gemini."""

    api: str
    requests: list[Request] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)
    held: threading.Event = field(default_factory=threading.Event)
    gate: threading.Event = field(default_factory=threading.Event)
    final_text: str = FINAL_TEXT
    file_name: str = FILE_NAME
    file_text: str = FILE_TEXT
    cost_hint: int = 0
    api_text_edits: bool = False  # Aider: edits come as text, not tool calls
    # Anthropic, Gemini: the tool the first answer calls with tool_input (default: write
    # the file with Write, Gemini's run_shell_command)
    tool_name: str = "Write"
    tool_input: dict[str, Any] | None = None
    edits_done: bool = False
    # a reviewer's server: every turn is the final text; with `verdicts`, the one for
    # the review round the prompt names ("Rejections so far: N")
    text_only: bool = False
    verdicts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.gate.set()
        self.hold_from: int | None = None
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------ lifecycle --
    def start(self) -> FakeModel:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._get(self)

            def do_POST(self) -> None:
                fake._post(self)

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.gate.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hold(self, after: int = 0) -> None:
        """Make model answers wait, from the one `after` turns from now (the CLI sits
        waiting on the model) until release()."""
        self.hold_from = len(self.model_requests()) + after
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def model_requests(self) -> list[Request]:
        """Requests that asked the model for a turn (not metadata, not token counts)."""
        return [r for r in self.requests if _is_turn(self.api, r)]

    # ------------------------------------------------------------- handlers --
    def _read(self, h: BaseHTTPRequestHandler) -> Request:
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n).decode(errors="replace") if n else ""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        req = Request(
            time.time(), h.path, dict(h.headers), body if isinstance(body, dict) else {}, raw
        )
        self.requests.append(req)
        return req

    def _json(self, h: BaseHTTPRequestHandler, obj: Any, status: int = 200) -> None:
        data = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _sse(self, h: BaseHTTPRequestHandler, events: list[tuple[str | None, Any]]) -> None:
        parts = []
        for name, data in events:
            line = f"event: {name}\n" if name else ""
            payload = data if isinstance(data, str) else json.dumps(data)
            parts.append(f"{line}data: {payload}\n\n")
        body = "".join(parts).encode()
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _get(self, h: BaseHTTPRequestHandler) -> None:
        self._read(h)
        if "models" in h.path:
            name = "gpt-fake" if self.api in ("responses", "chat") else "claude-fake"
            self._json(
                h,
                {
                    "object": "list",
                    "data": [{"id": name, "object": "model", "created": 0, "owned_by": "fake"}],
                    "models": [],
                },
            )
            return
        self._json(h, {})

    def _post(self, h: BaseHTTPRequestHandler) -> None:
        req = self._read(h)
        if _is_turn(self.api, req):
            turn = len(self.model_requests()) - 1
            if self.hold_from is not None and turn >= self.hold_from and not self.gate.is_set():
                self.held.set()
                self.gate.wait(600)
        handler = getattr(self, f"_answer_{self.api.replace('-text', '')}")
        handler(h, req)
        if _is_turn(self.api, req):
            self.answered.append(time.time())

    # ------------------------------------------------------------ anthropic --
    def _answer_anthropic(self, h: BaseHTTPRequestHandler, req: Request) -> None:
        if "count_tokens" in req.path:
            self._json(h, {"input_tokens": 100})
            return
        msgs = req.body.get("messages") or []
        done = self.text_only or any(
            isinstance(c, dict) and c.get("type") == "tool_result"
            for m in msgs
            for c in (m.get("content") if isinstance(m.get("content"), list) else [])
        )
        if self.text_only and self.verdicts:
            rounds = re.findall(r"Rejections so far: (\d+)", req.raw)
            n = int(rounds[-1]) if rounds else 0
            self.final_text = self.verdicts[min(n, len(self.verdicts) - 1)]
        text = json.dumps(req.body.get("system", ""))
        m = re.search(r"Primary working directory: ([^\s\\]+)", text + req.raw)
        where = f"{m.group(1)}/{self.file_name}" if m else self.file_name
        model = req.body.get("model", "claude-fake")
        usage = {
            "input_tokens": 1200,
            "output_tokens": 1,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        }
        if done:
            block: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": self.final_text}]
            stop = "end_turn"
        else:
            n = len(self.model_requests())
            block = {"type": "tool_use", "id": f"toolu_fake{n}", "name": self.tool_name,
                     "input": {}}  # fmt: skip
            args = json.dumps(
                self.tool_input
                if self.tool_input is not None
                else {"file_path": where, "content": self.file_text}
            )
            deltas = [{"type": "input_json_delta", "partial_json": args}]
            stop = "tool_use"
        if not req.body.get("stream"):
            content = (
                [{"type": "text", "text": self.final_text}]
                if done
                else [{**block, "input": json.loads(deltas[0]["partial_json"])}]
            )
            self._json(
                h,
                {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": {**usage, "output_tokens": 40},
                },
            )
            return
        events: list[tuple[str | None, Any]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": f"msg_fake{len(self.requests)}",
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": usage,
                    },
                },
            ),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": block},
            ),
            *[
                ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d})
                for d in deltas
            ],
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": 40},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        self._sse(h, events)

    # ------------------------------------------------------------ responses --
    def _answer_responses(self, h: BaseHTTPRequestHandler, req: Request) -> None:
        items = req.body.get("input") or []
        done = any(isinstance(i, dict) and i.get("type") == "function_call_output" for i in items)
        n = len(self.model_requests())
        rid = f"resp_fake{n}"
        model = req.body.get("model", "gpt-fake")
        if done:
            item: dict[str, Any] = {
                "type": "message",
                "id": f"msg_fake{n}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": self.final_text, "annotations": []}],
            }
        else:
            cmd = f"printf %s {shlex.quote(self.file_text)} > {self.file_name}"
            item = {
                "type": "function_call",
                "id": f"fc_fake{n}",
                "call_id": f"call_fake{n}",
                "name": "exec_command",
                "arguments": json.dumps({"cmd": cmd}),
                "status": "completed",
            }
        usage = {
            "input_tokens": 1000,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 50,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 1050,
        }
        base = {"id": rid, "object": "response", "created_at": int(time.time()), "model": model}
        events: list[tuple[str | None, Any]] = [
            (
                "response.created",
                {
                    "type": "response.created",
                    "sequence_number": 0,
                    "response": {**base, "status": "in_progress", "output": []},
                },
            ),
            (
                "response.output_item.added",
                {
                    "type": "response.output_item.added",
                    "sequence_number": 1,
                    "output_index": 0,
                    "item": {**item, "status": "in_progress"},
                },
            ),
        ]
        if done:
            events.append(
                (
                    "response.output_text.delta",
                    {
                        "type": "response.output_text.delta",
                        "sequence_number": 2,
                        "item_id": item["id"],
                        "output_index": 0,
                        "content_index": 0,
                        "delta": self.final_text,
                    },
                )
            )
        events += [
            (
                "response.output_item.done",
                {
                    "type": "response.output_item.done",
                    "sequence_number": 3,
                    "output_index": 0,
                    "item": item,
                },
            ),
            (
                "response.completed",
                {
                    "type": "response.completed",
                    "sequence_number": 4,
                    "response": {**base, "status": "completed", "output": [item], "usage": usage},
                },
            ),
        ]
        self._sse(h, events)

    # ----------------------------------------------------------------- chat --
    def _answer_chat(self, h: BaseHTTPRequestHandler, req: Request) -> None:
        msgs = req.body.get("messages") or []
        tools = [t.get("function", {}).get("name") for t in req.body.get("tools") or []]
        done = any(isinstance(m, dict) and m.get("role") == "tool" for m in msgs)
        n = len(self.model_requests())
        model = req.body.get("model", "gpt-fake")
        delta: dict[str, Any]
        if not tools or done:
            text = self.final_text if tools or done else self.chat_text(msgs)
            delta, finish = {"role": "assistant", "content": text}, "stop"
        else:
            cmd = f"printf %s {shlex.quote(self.file_text)} > {self.file_name}"
            name = "bash" if "bash" in tools else tools[0]
            args = {"command": cmd, "description": "Write the file"}
            delta = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": f"call_fake{n}",
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)},
                    }
                ],
            }
            finish = "tool_calls"
        usage = {"prompt_tokens": 800, "completion_tokens": 30, "total_tokens": 830}
        base = {"id": f"chatcmpl-fake{n}", "created": int(time.time()), "model": model}
        if not req.body.get("stream"):
            message = {k: v for k, v in delta.items() if k != "tool_calls"}
            if "tool_calls" in delta:
                message["tool_calls"] = [
                    {k: v for k, v in c.items() if k != "index"} for c in delta["tool_calls"]
                ]
            self._json(
                h,
                {
                    **base,
                    "object": "chat.completion",
                    "usage": usage,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                },
            )
            return
        chunk = {**base, "object": "chat.completion.chunk"}
        self._sse(
            h,
            [
                (None, {**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}),
                (None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}),
                (None, {**chunk, "choices": [], "usage": usage}),
                (None, "[DONE]"),
            ],
        )

    def chat_text(self, msgs: list[Any]) -> str:
        """A reply for a request without tools: a title, or (Aider) a whole-file edit
        the first time and the final message once the file was written."""
        text = json.dumps(msgs)
        if self.api_text_edits and "I wrote" not in text and not self.edits_done:
            self.edits_done = True
            return f"{self.file_name}\n```\n{self.file_text}```\n\n{self.final_text}"
        return "Write hello.txt" if not self.api_text_edits else self.final_text

    # --------------------------------------------------------------- gemini --
    def _answer_gemini(self, h: BaseHTTPRequestHandler, req: Request) -> None:
        if "countTokens" in req.path:
            self._json(h, {"totalTokens": 100})
            return
        contents = req.body.get("contents") or []
        done = any(
            isinstance(p, dict) and "functionResponse" in p
            for c in contents
            for p in (c.get("parts") or [])
        )
        tools = [f.get("name") for t in req.body.get("tools") or []
                 for f in t.get("functionDeclarations") or []]  # fmt: skip
        if done or not tools:
            part: dict[str, Any] = {"text": self.final_text}
        elif self.tool_input is not None:  # another tool than the shell (an MCP tool)
            part = {"functionCall": {"name": self.tool_name, "args": self.tool_input}}
        else:
            cmd = f"printf %s {shlex.quote(self.file_text)} > {self.file_name}"
            part = {
                "functionCall": {
                    "name": "run_shell_command",
                    "args": {"command": cmd, "description": "Write the file"},
                }
            }
        model = h.path.split("/models/")[-1].split(":")[0]
        chunk = {
            "candidates": [
                {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": 900,
                "candidatesTokenCount": 20,
                "totalTokenCount": 920,
            },
            "modelVersion": model,
        }
        if "streamGenerateContent" in req.path:
            self._sse(h, [(None, chunk)])
        else:
            self._json(h, chunk)


def _is_turn(api: str, req: Request) -> bool:
    if api == "anthropic":
        return (
            "/messages" in req.path
            and "count_tokens" not in req.path
            and bool(req.body.get("tools"))
        )
    if api == "responses":
        return req.path.rstrip("/").endswith("/responses")
    if api == "chat":
        return "chat/completions" in req.path and bool(req.body.get("tools"))
    if api == "chat-text":
        return "chat/completions" in req.path
    if api == "gemini":
        return "GenerateContent" in req.path and bool(req.body.get("tools"))
    return False
