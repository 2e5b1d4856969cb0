"""Browser tools: Playwright driving Debian's chromium against a page served on 127.0.0.1.

The real-browser tests skip, with the reason, where Playwright or chromium is absent
(`pip install 'agentos[browser]'` and `apt-get install chromium`). The tests of the
error messages for a missing Playwright or chromium always run.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import socket
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from agentos.tools.base import ToolContext
from agentos.tools.browser import BrowserPool, browser_executable

HAVE_PLAYWRIGHT = importlib.util.find_spec("playwright") is not None
HAVE_CHROMIUM = Path(browser_executable()).is_file()
needs_browser = pytest.mark.skipif(
    not (HAVE_PLAYWRIGHT and HAVE_CHROMIUM),
    reason=(
        "needs Playwright (pip install 'agentos[browser]')"
        if not HAVE_PLAYWRIGHT
        else f"needs chromium at {browser_executable()} (apt-get install chromium)"
    ),
)

PAGES = {
    "index.html": """<!doctype html><html><head><title>Tool test</title></head><body>
<h1>Hello from AgentOS</h1>
<p id="intro">A page for the browser tools.</p>
<form action="/done.html" method="get">
  <label for="who">Your name</label> <input id="who" name="who">
  <button type="submit">Send</button>
</form>
<script>
  document.cookie = "seen=1";
  localStorage.setItem("visits", String(Number(localStorage.getItem("visits") || 0) + 1));
  document.getElementById("intro").dataset.visits = localStorage.getItem("visits");
</script>
</body></html>""",
    "done.html": """<!doctype html><html><head><title>Done</title></head><body>
<p id="out"></p>
<script>
  document.getElementById("out").textContent =
    "Thanks, " + new URLSearchParams(location.search).get("who") + "!";
</script></body></html>""",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A static site on 127.0.0.1 (a real HTTP server in a thread); yields its base URL."""
    root = tmp_path_factory.mktemp("site")
    for name, html in PAGES.items():
        (root / name).write_text(html)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def pool() -> AsyncIterator[BrowserPool]:
    p = BrowserPool()
    try:
        yield p
    finally:
        await p.close()


def _ctx(worktree: Path, pool: BrowserPool, task_id: int) -> ToolContext:
    return ToolContext(
        kernel=None,
        agent="worker-1",
        role="worker",
        task_id=task_id,
        worktree=worktree,
        extra={"browser_pool": pool},
    )


@needs_browser
async def test_open_read_fill_click_screenshot(
    site: str, worktree: Path, pool: BrowserPool, call
) -> None:
    ctx = _ctx(worktree, pool, 1)
    r = await call(ctx, "browser_open", {"url": f"{site}/index.html"})
    assert r.ok, r.output
    assert r.output == f"opened {site}/index.html — 'Tool test' (HTTP 200)"

    r = await call(ctx, "browser_text")
    assert r.ok and "Hello from AgentOS" in r.output and "A page for the browser tools." in r.output
    r = await call(ctx, "browser_text", {"selector": "#intro"})
    assert r.output.endswith("A page for the browser tools.")

    r = await call(ctx, "browser_snapshot")
    assert r.ok, r.output
    assert 'heading "Hello from AgentOS"' in r.output
    assert "textbox" in r.output and 'button "Send"' in r.output

    r = await call(ctx, "browser_fill", {"selector": "#who", "value": "Ada"})
    assert r.ok and r.output == "filled #who (3 characters)"
    r = await call(ctx, "browser_click", {"selector": "text=Send"})
    assert r.ok, r.output
    assert "/done.html?who=Ada" in r.output and "'Done'" in r.output
    r = await call(ctx, "browser_text")
    assert "Thanks, Ada!" in r.output

    r = await call(ctx, "browser_screenshot", {"full_page": True})
    assert r.ok, r.output
    rel = r.output.split()[1]
    assert rel.startswith(".agentos/screenshots/task-1-") and rel.endswith(".png")
    assert (worktree / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (worktree / ".agentos" / ".gitignore").read_text().splitlines()[-1] == "*"


@needs_browser
async def test_snapshot_refs_can_be_clicked(
    site: str, worktree: Path, pool: BrowserPool, call
) -> None:
    ctx = _ctx(worktree, pool, 2)
    await call(ctx, "browser_open", {"url": f"{site}/index.html"})
    snap = (await call(ctx, "browser_snapshot")).output
    line = next((ln for ln in snap.splitlines() if 'button "Send"' in ln), "")
    if "[ref=" not in line:
        pytest.skip("this Playwright's aria snapshot has no refs")
    ref = line.split("[ref=")[1].split("]")[0]
    await call(ctx, "browser_fill", {"selector": "#who", "value": "Grace"})
    r = await call(ctx, "browser_click", {"selector": f"aria-ref={ref}"})
    assert r.ok and "who=Grace" in r.output, r.output


@needs_browser
async def test_one_context_per_task(site: str, worktree: Path, pool: BrowserPool, call) -> None:
    a, b = _ctx(worktree, pool, 10), _ctx(worktree, pool, 11)

    async def visits(ctx: ToolContext) -> str:
        page = await pool.page(ctx.task_id)
        return str(await page.get_attribute("#intro", "data-visits"))

    await call(a, "browser_open", {"url": f"{site}/index.html"})
    await call(a, "browser_open", {"url": f"{site}/index.html"})
    await call(b, "browser_open", {"url": f"{site}/index.html"})
    assert await visits(a) == "2"  # task 10's storage persists between its calls
    assert await visits(b) == "1"  # task 11 does not see it
    await pool.close_task(10)
    r = await call(a, "browser_text")
    assert not r.ok and "browser_open first" in r.output
    await call(a, "browser_open", {"url": f"{site}/index.html"})
    assert await visits(a) == "1"  # a fresh context after close_task


@needs_browser
async def test_browser_errors_are_readable(
    site: str, worktree: Path, pool: BrowserPool, call
) -> None:
    ctx = _ctx(worktree, pool, 3)
    r = await call(ctx, "browser_click", {"selector": "#x"})
    assert not r.ok and "browser_open first" in r.output
    r = await call(ctx, "browser_open", {"url": f"file://{worktree}/x.html"})
    assert not r.ok and "only http(s) URLs" in r.output
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = await call(ctx, "browser_open", {"url": f"http://127.0.0.1:{port}/"})
    assert not r.ok and r.output.startswith("error: ") and "ERR_CONNECTION_REFUSED" in r.output
    await call(ctx, "browser_open", {"url": f"{site}/index.html"})
    pool.action_timeout = 0.5
    await pool.close_task(3)
    await call(ctx, "browser_open", {"url": f"{site}/index.html"})
    r = await call(ctx, "browser_click", {"selector": "#does-not-exist"})
    assert not r.ok and "Timeout" in r.output and "\n" not in r.output


async def test_missing_chromium_is_a_readable_error(worktree: Path, call, tmp_path: Path) -> None:
    pool = BrowserPool(executable=str(tmp_path / "no-chromium"))
    ctx = _ctx(worktree, pool, 4)
    r = await call(ctx, "browser_open", {"url": "http://127.0.0.1/"})
    await pool.close()
    assert not r.ok
    if HAVE_PLAYWRIGHT:
        assert "no chromium at" in r.output and "apt-get install chromium" in r.output
    else:
        assert "need Playwright" in r.output


async def test_missing_playwright_is_a_readable_error(
    worktree: Path, call, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "playwright.async_api", None)  # import fails
    pool = BrowserPool()
    ctx = _ctx(worktree, pool, 5)
    r = await call(ctx, "browser_open", {"url": "http://127.0.0.1/"})
    assert not r.ok and "agentos[browser]" in r.output


async def test_contexts_without_a_pool_share_the_fallback(worktree: Path) -> None:
    from agentos.tools.browser import close_fallback_pool, pool_for

    def bare() -> ToolContext:
        return ToolContext(kernel=None, agent="a", role="r", task_id=None, worktree=worktree)

    pool = pool_for(bare())
    assert pool_for(bare()) is pool  # not a new browser per call
    await close_fallback_pool()
    assert pool_for(bare()) is not pool
    await close_fallback_pool()
