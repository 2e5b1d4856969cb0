"""Browser tools: Playwright driving Debian's chromium against a page served on 127.0.0.1.

The site is on a loopback address, which the browser refuses by default (SSRF): the
functional tests opt in with `allow_private_network=True`; the guard's own tests show
the refusal, directly and through redirects.

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


def _ctx(
    worktree: Path,
    pool: BrowserPool,
    task_id: int,
    *,
    allow_private: bool = True,
    private_hosts: tuple[str, ...] = (),
) -> ToolContext:
    return ToolContext(
        kernel=None,
        agent="worker-1",
        role="worker",
        task_id=task_id,
        worktree=worktree,
        allow_private_network=allow_private,
        private_hosts=private_hosts,
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
    # the guarded proxy makes the connection, and says why it failed
    assert not r.ok and r.output == f"error: cannot connect to 127.0.0.1:{port}: Connection refused"
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


# -------------------------------------------------------------------- SSRF ----


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped: judged by the IPv4 inside
        ("2002:7f00:1::1", "loopback"),  # 6to4 around 127.0.0.1
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "link-local"),  # a cloud's metadata service
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-global"),  # carrier-grade NAT
    ],
)
def test_non_public_addresses_are_named(address: str, why: str) -> None:
    import ipaddress

    from agentos.tools.netguard import forbidden_reason

    assert forbidden_reason(ipaddress.ip_address(address)) == why


async def test_check_url_resolves_names_and_honours_the_policy() -> None:
    from agentos.tools.base import ToolError
    from agentos.tools.netguard import AddressRefused, NetworkPolicy, check_url

    strict = NetworkPolicy()
    for url in ("http://127.0.0.1:8000/", "http://localhost/", "https://[::1]/", "http://10.0.0.8"):
        with pytest.raises(AddressRefused, match="address; this role may reach only public"):
            await check_url(url, strict)
    await check_url("http://93.184.216.34/", strict)  # a public literal: no lookup needed
    await check_url("http://127.0.0.1:8000/", NetworkPolicy(allow_private=True))
    only = NetworkPolicy(private_hosts=frozenset({"127.0.0.1:8000"}))
    await check_url("http://127.0.0.1:8000/x", only)
    with pytest.raises(AddressRefused):
        await check_url("http://127.0.0.1:8001/", only)
    with pytest.raises(ToolError, match="only http"):
        await check_url("file:///etc/passwd", strict)


class _Counting(http.server.BaseHTTPRequestHandler):
    """/to?port=N redirects to 127.0.0.1:N; /page embeds an image from ?port=N; counts hits."""

    hits: list[str]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.hits.append(self.path)
        port = self.path.rsplit("port=", 1)[-1] if "port=" in self.path else ""
        if self.path.startswith("/to"):
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{port}/landed")
            self.end_headers()
            return
        body = b"<title>ok</title><p>landed</p>"
        if self.path.startswith("/page"):
            body = f'<title>page</title><img src="http://127.0.0.1:{port}/pixel.png">'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def two_servers() -> Iterator[tuple[tuple[int, list[str]], tuple[int, list[str]]]]:
    """Two counting servers on 127.0.0.1: ((port_a, hits_a), (port_b, hits_b))."""
    servers = []
    out = []
    for _ in range(2):
        hits: list[str] = []
        handler = type("H", (_Counting,), {"hits": hits})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        out.append((server.server_address[1], hits))
    try:
        yield out[0], out[1]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@needs_browser
async def test_loopback_is_refused_by_default(
    site: str, worktree: Path, pool: BrowserPool, call
) -> None:
    ctx = _ctx(worktree, pool, 20, allow_private=False)
    r = await call(ctx, "browser_open", {"url": f"{site}/index.html"})
    assert not r.ok and "127.0.0.1 is" not in r.output
    assert r.output.startswith("error: refused to connect to 127.0.0.1: a loopback address")
    r = await call(ctx, "browser_open", {"url": site.replace("127.0.0.1", "localhost")})
    assert not r.ok and "localhost (127.0.0.1): a loopback address" in r.output


@needs_browser
async def test_a_redirect_to_a_private_address_is_refused(
    two_servers, worktree: Path, pool: BrowserPool, call
) -> None:
    # The first hop stands for a public page (allowed by name); it redirects to a
    # loopback service the role may not reach. Playwright's routes do not see redirect
    # hops; the proxy sees every connection, so the second hop never leaves.
    (port_a, hits_a), (port_b, hits_b) = two_servers
    ctx = _ctx(worktree, pool, 21, allow_private=False, private_hosts=(f"127.0.0.1:{port_a}",))
    r = await call(ctx, "browser_open", {"url": f"http://127.0.0.1:{port_a}/to?port={port_b}"})
    assert not r.ok, r.output
    assert "refused to connect to 127.0.0.1: a loopback address" in r.output
    assert hits_a[0] == f"/to?port={port_b}" and hits_b == []
    # a subresource of an allowed page is refused the same way, and reported
    r = await call(ctx, "browser_open", {"url": f"http://127.0.0.1:{port_a}/page?port={port_b}"})
    assert r.ok and "'page'" in r.output and "request(s) refused" in r.output, r.output
    assert hits_b == []
    # with both allowed the same redirect lands
    ctx = _ctx(worktree, pool, 22, allow_private=True)
    r = await call(ctx, "browser_open", {"url": f"http://127.0.0.1:{port_a}/to?port={port_b}"})
    assert r.ok and f"127.0.0.1:{port_b}/landed" in r.output and hits_b[0] == "/landed"
