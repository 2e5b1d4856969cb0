"""What starting a stage's MCP servers costs: start, handshake and tools/list of each
real server (median of 3), beside a bare `python -c pass` started the same way in the
same run (the floor any stdio server pays), and one call's round trip.

    python tests/tools/mcp/bench_start.py     # AGENTOS_TEST_TOOLS_DIR as for the tests
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from agentos.tools.base import ToolContext
from agentos.tools.mcp import McpServerConfig, McpToolset, plan_server

TOOLS = Path(os.environ.get("AGENTOS_TEST_TOOLS_DIR", "/opt/agentos-test-tools"))
FIXTURE = Path(__file__).with_name("fixture_server.py")
ROOT = Path(__file__).resolve().parents[3]
SERVERS = {
    "time": McpServerConfig(command=str(TOOLS / "mcp/bin/mcp-server-time")),
    "git": McpServerConfig(
        command=str(TOOLS / "mcp/bin/mcp-server-git"), args=["--repository", str(ROOT)]
    ),
    "fs": McpServerConfig(
        command=str(TOOLS / "node_modules/.bin/mcp-server-filesystem"), args=[str(ROOT)]
    ),
    "fixture": McpServerConfig(command=sys.executable, args=[str(FIXTURE)]),
}


async def _bare() -> float:
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await proc.wait()
    return time.perf_counter() - t0


async def main() -> None:
    floor = statistics.median([await _bare() for _ in range(3)])
    print(f"baseline: python -c pass {floor:.2f} s (median of 3)")
    for name, cfg in SERVERS.items():
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            async with McpToolset([plan_server(name, cfg, {}, worktree=ROOT)]) as ts:
                runs.append(time.perf_counter() - t0)
        med = statistics.median(runs)
        print(f"{name:8} start + tools/list {med:.2f} s ({med / floor:.1f}x baseline), "
              f"{len(ts.tools)} tools")  # fmt: skip
    async with McpToolset([plan_server("fixture", SERVERS["fixture"], {})]) as ts:
        add = next(t for t in ts.tools if t.name == "mcp__fixture__add")
        ctx = ToolContext(kernel=None, agent="a", role="r", task_id=1, worktree=ROOT)
        for _ in range(5):
            await add.call(ctx, {"a": 1, "b": 2})
        t0 = time.perf_counter()
        for _ in range(50):
            await add.call(ctx, {"a": 1, "b": 2})
        print(f"one call (fixture add): {(time.perf_counter() - t0) / 50 * 1000:.1f} ms (50 calls)")


if __name__ == "__main__":
    asyncio.run(main())
