"""Browser tools: Playwright's async API driving Debian's chromium, one context per task.

Optional: install the extra `agentos[browser]` (Playwright) and the system `chromium`
package. Playwright's own browser download (`playwright install`) is never used: the
executable is AGENTOS_BROWSER_EXECUTABLE or /usr/bin/chromium. When either is missing
the tools return an error saying what to install; nothing else breaks.

A `BrowserPool` owns one Playwright instance and one browser process, started on first
use, and one browser context (cookies, storage, one page) per task, so tasks never see
each other's sessions. The agent runtime creates the pool and puts it in
`ToolContext.extra["browser_pool"]`; it calls `close_task(task_id)` when a task's work
ends and `close()` at shutdown. A context without a pool uses one fallback pool per
process (`close_fallback_pool()` closes it).

Only http(s) and about:blank URLs open: `file://` would read outside the worktree.
Every request of a task's context (navigations, each redirect hop, subresources,
WebSockets) goes through the task's `GuardedProxy` (tools/netguard.py), which refuses
loopback, private, link-local and other non-public addresses after resolving the host,
and connects to the address it checked; a role opts in with
`ToolContext.allow_private_network` or `private_hosts`. Service workers are blocked
and WebRTC may not send UDP outside the proxy, so nothing bypasses it.
Screenshots go to `.agentos/screenshots/` in the worktree, a directory that ignores
itself in git.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agentos.tools.base import Tool, ToolContext, ToolError, ToolInput
from agentos.tools.files import worktree_root
from agentos.tools.netguard import PROXY_VERDICT, GuardedProxy, NetworkPolicy, check_url
from pydantic import Field

DEFAULT_EXECUTABLE = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # every connection goes through the task's guarded proxy, loopback included
    "--proxy-bypass-list=<-loopback>",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--dns-prefetch-disable",
]
# Chromium applies per-context proxies only when the browser was launched with one.
PER_CONTEXT_PROXY = {"server": "http://per-context"}
NAVIGATION_TIMEOUT = 30.0
ACTION_TIMEOUT = 10.0
SCREENSHOT_DIR = Path(".agentos") / "screenshots"
INSTALL_HINT = "install the browser extra (pip install 'agentos[browser]')"


def browser_executable() -> str:
    """The chromium to drive: AGENTOS_BROWSER_EXECUTABLE, else Debian's /usr/bin/chromium."""
    return os.environ.get("AGENTOS_BROWSER_EXECUTABLE") or DEFAULT_EXECUTABLE


def unavailable() -> str | None:
    """Why the browser tools cannot run here (Playwright or chromium missing), or None."""
    import importlib.util

    if importlib.util.find_spec("playwright") is None:
        return f"Playwright is not installed ({INSTALL_HINT})"
    exe = browser_executable()
    if not _is_file(exe):
        return f"no chromium at {exe} (apt-get install chromium, or set AGENTOS_BROWSER_EXECUTABLE)"
    if not os.access(exe, os.X_OK):
        return f"{exe} is not executable"
    return None


class BrowserPool:
    """One browser process, one context (and page) per task; start lazily, close explicitly."""

    def __init__(
        self,
        executable: str | None = None,
        *,
        navigation_timeout: float = NAVIGATION_TIMEOUT,
        action_timeout: float = ACTION_TIMEOUT,
    ) -> None:
        self.executable = executable or browser_executable()
        self.navigation_timeout = navigation_timeout
        self.action_timeout = action_timeout
        self._playwright: Any = None
        self._browser: Any = None
        self._contexts: dict[int | None, Any] = {}
        self._pages: dict[int | None, Any] = {}
        self._proxies: dict[int | None, GuardedProxy] = {}
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _check_loop(self) -> None:
        # Playwright objects belong to the loop that made them; a pool reused from another
        # loop (a second asyncio.run) starts afresh instead of touching dead objects.
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._lock = asyncio.Lock()
            self._playwright = self._browser = None
            self._contexts.clear()
            self._pages.clear()
            self._proxies.clear()

    async def _ensure_browser(self) -> Any:
        if self._browser is not None and self._browser.is_connected():
            return self._browser
        try:
            from playwright.async_api import async_playwright
        except ImportError as exc:
            raise ToolError(f"the browser tools need Playwright: {INSTALL_HINT}") from exc
        if not _is_file(self.executable):
            raise ToolError(
                f"no chromium at {self.executable}: install Debian's chromium package "
                "(apt-get install chromium) or set AGENTOS_BROWSER_EXECUTABLE"
            )
        await self._shutdown()  # a crashed browser leaves stale contexts behind
        self._playwright = await async_playwright().start()
        try:
            self._browser = await self._playwright.chromium.launch(
                executable_path=self.executable,
                args=LAUNCH_ARGS,
                headless=True,
                proxy=PER_CONTEXT_PROXY,
            )
        except Exception as exc:
            await self._shutdown()
            raise ToolError(
                f"cannot start chromium ({self.executable}): {_first_line(exc)}"
            ) from exc
        return self._browser

    async def page(self, task_id: int | None, policy: NetworkPolicy | None = None) -> Any:
        """The task's page, creating the browser and the task's context on first use.

        `policy` (default: public addresses only) is what the task's proxy lets through;
        a later call with another policy replaces it for the context's next requests.
        """
        self._check_loop()
        async with self._lock:
            browser = await self._ensure_browser()
            proxy = self._proxies.get(task_id)
            if proxy is not None and policy is not None:
                proxy.policy = policy
            page = self._pages.get(task_id)
            if page is not None and not page.is_closed():
                return page
            context = self._contexts.get(task_id)
            if context is None:
                proxy = await GuardedProxy(policy or NetworkPolicy()).start()
                try:
                    context = await browser.new_context(
                        viewport={"width": 1280, "height": 800},
                        accept_downloads=False,
                        proxy={"server": proxy.url},
                        service_workers="block",  # a worker's fetches would skip routing
                    )
                except BaseException:
                    await proxy.close()
                    raise
                self._proxies[task_id] = proxy
                context.set_default_timeout(self.action_timeout * 1000)
                context.set_default_navigation_timeout(self.navigation_timeout * 1000)
                self._contexts[task_id] = context
            page = await context.new_page()
            self._pages[task_id] = page
            return page

    def proxy(self, task_id: int | None) -> GuardedProxy | None:
        """The guarded proxy of the task's context, if it has one."""
        return self._proxies.get(task_id)

    def has_page(self, task_id: int | None) -> bool:
        """Whether the task has an open page."""
        if self._loop is not asyncio.get_running_loop():
            return False
        page = self._pages.get(task_id)
        return page is not None and not page.is_closed()

    async def close_task(self, task_id: int | None) -> None:
        """Close the task's context (cookies, storage, page); the browser keeps running."""
        self._check_loop()
        async with self._lock:
            self._pages.pop(task_id, None)
            context = self._contexts.pop(task_id, None)
            if context is not None:
                with contextlib.suppress(Exception):
                    await context.close()
            proxy = self._proxies.pop(task_id, None)
            if proxy is not None:
                await proxy.close()

    async def close(self) -> None:
        """Close every context, the browser and Playwright."""
        self._check_loop()
        async with self._lock:
            await self._shutdown()

    async def _shutdown(self) -> None:
        for context in self._contexts.values():
            with contextlib.suppress(Exception):
                await context.close()
        self._contexts.clear()
        self._pages.clear()
        for proxy in self._proxies.values():
            await proxy.close()
        self._proxies.clear()
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.close()
            self._browser = None
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                await self._playwright.stop()
            self._playwright = None


_fallback: BrowserPool | None = None


def pool_for(ctx: ToolContext) -> BrowserPool:
    """The runtime's pool from ctx.extra, else the process's fallback pool.

    The fallback exists because a context is often built per call: a pool created per
    context would start a browser per call and never close it. A runtime should own its
    pool and close it (`close_fallback_pool()` closes the fallback).
    """
    global _fallback
    pool = ctx.extra.get("browser_pool")
    if pool is None:
        if _fallback is None:
            _fallback = BrowserPool()
        return _fallback
    if not isinstance(pool, BrowserPool):
        raise ToolError("ctx.extra['browser_pool'] is not a BrowserPool")
    return pool


async def close_fallback_pool() -> None:
    """Close the fallback pool, if one was started."""
    global _fallback
    pool, _fallback = _fallback, None
    if pool is not None:
        await pool.close()


def _is_file(path: str) -> bool:
    return os.path.isfile(path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # Playwright errors carry a call log after the first lines; the model needs the first.
    return text.splitlines()[0] if text else type(exc).__name__


async def _current_page(ctx: ToolContext) -> Any:
    pool = pool_for(ctx)
    if not pool.has_page(ctx.task_id):
        raise ToolError("no page is open: call browser_open first")
    return await pool.page(ctx.task_id, NetworkPolicy.of(ctx))


def _proxy_marks(pool: BrowserPool, task_id: int | None) -> tuple[int, int]:
    proxy = pool.proxy(task_id)
    return (len(proxy.refusals), len(proxy.errors)) if proxy is not None else (0, 0)


def _new_refusals(pool: BrowserPool, task_id: int | None, since: tuple[int, int]) -> list[str]:
    proxy = pool.proxy(task_id)
    return proxy.refusals[since[0] :] if proxy is not None else []


def _new_errors(pool: BrowserPool, task_id: int | None, since: tuple[int, int]) -> list[str]:
    proxy = pool.proxy(task_id)
    return proxy.errors[since[1] :] if proxy is not None else []


def _refusal_note(pool: BrowserPool, task_id: int | None, since: tuple[int, int]) -> str:
    refused = _new_refusals(pool, task_id, since)
    if not refused:
        return ""
    return f"\n[{len(refused)} request(s) refused; the first: {refused[0]}]"


async def _guard(coro: Any) -> Any:
    """Await a Playwright call; its errors become one-line ToolErrors."""
    try:
        from playwright.async_api import Error as PlaywrightError
    except ImportError as exc:
        coro.close()
        raise ToolError(f"the browser tools need Playwright: {INSTALL_HINT}") from exc
    try:
        return await coro
    except PlaywrightError as exc:
        raise ToolError(_first_line(exc)) from exc


async def _where(page: Any) -> str:
    title = await _guard(page.title())
    return f"{page.url} — {title!r}" if title else page.url


class BrowserOpenInput(ToolInput):
    url: str = Field(min_length=1, description="http(s) URL to open.")


async def browser_open(ctx: ToolContext, args: BrowserOpenInput) -> str:
    """Open a URL in the task's page."""
    url = args.url.strip()
    scheme = urlsplit(url).scheme.lower()
    if url != "about:blank" and scheme not in ("http", "https"):
        raise ToolError(f"only http(s) URLs open in the browser, not {scheme or url!r}")
    policy = NetworkPolicy.of(ctx)
    if url != "about:blank":
        await check_url(url, policy)  # the proxy checks again, on every hop
    pool = pool_for(ctx)
    page = await pool.page(ctx.task_id, policy)
    since = _proxy_marks(pool, ctx.task_id)
    try:
        response = await _guard(page.goto(url, wait_until="load"))
    except ToolError as exc:
        # https and redirects to https fail as a tunnel error: say why the proxy refused
        refused = _new_refusals(pool, ctx.task_id, since)
        failed = _new_errors(pool, ctx.task_id, since)
        if refused or failed:
            raise ToolError((refused or failed)[0]) from exc
        raise
    verdict = response.headers.get(PROXY_VERDICT) if response is not None else None
    if verdict is not None:
        # the proxy answered itself: this navigation (or a redirect on its way) is refused
        # or unreachable; show its reason, not its error page
        reasons = _new_refusals(pool, ctx.task_id, since) + _new_errors(pool, ctx.task_id, since)
        with contextlib.suppress(ToolError):
            await _guard(page.goto("about:blank"))
        raise ToolError(reasons[0] if reasons else f"the request to {url} was refused")
    status = f"HTTP {response.status}" if response is not None else "no HTTP response"
    return f"opened {await _where(page)} ({status}){_refusal_note(pool, ctx.task_id, since)}"


class BrowserTextInput(ToolInput):
    selector: str = Field(default="body", description="Element whose text to read.")


async def browser_text(ctx: ToolContext, args: BrowserTextInput) -> str:
    """The visible text of the page (or of one element)."""
    page = await _current_page(ctx)
    text = await _guard(page.locator(args.selector).first.inner_text())
    return f"{await _where(page)}\n\n{text.strip() or '(no text)'}"


class BrowserSnapshotInput(ToolInput):
    pass


async def browser_snapshot(ctx: ToolContext, args: BrowserSnapshotInput) -> str:
    """The page's accessibility tree as text (roles, names, [ref=...] for clicking)."""
    page = await _current_page(ctx)
    body = page.locator("body")
    try:
        snap = await _guard(body.aria_snapshot(mode="ai"))
    except TypeError:  # an older Playwright without modes
        snap = await _guard(body.aria_snapshot())
    return f"{await _where(page)}\n\n{snap}"


class BrowserClickInput(ToolInput):
    selector: str = Field(
        min_length=1,
        description="Playwright selector: CSS ('button#save'), text ('text=Save'), role "
        "('role=button[name=\"Save\"]') or a snapshot ref ('aria-ref=e12').",
    )


async def browser_click(ctx: ToolContext, args: BrowserClickInput) -> str:
    """Click an element and report where the page is afterwards."""
    page = await _current_page(ctx)
    pool = pool_for(ctx)
    since = _proxy_marks(pool, ctx.task_id)
    await _guard(page.click(args.selector))
    with contextlib.suppress(ToolError):
        await _guard(page.wait_for_load_state("load"))
    note = _refusal_note(pool, ctx.task_id, since)
    return f"clicked {args.selector}; now at {await _where(page)}{note}"


class BrowserFillInput(ToolInput):
    selector: str = Field(min_length=1, description="Selector of an input, textarea or editable.")
    value: str = Field(description="Text to put in it (replaces what is there).")


async def browser_fill(ctx: ToolContext, args: BrowserFillInput) -> str:
    """Fill a form field."""
    page = await _current_page(ctx)
    await _guard(page.fill(args.selector, args.value))
    return f"filled {args.selector} ({len(args.value)} characters)"


class BrowserScreenshotInput(ToolInput):
    full_page: bool = Field(default=False, description="The whole page, not only the viewport.")


async def browser_screenshot(ctx: ToolContext, args: BrowserScreenshotInput) -> str:
    """Save a PNG of the page under .agentos/screenshots/ and return its path."""
    page = await _current_page(ctx)
    root = worktree_root(ctx)
    folder = root / SCREENSHOT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    ignore = root / ".agentos" / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# tool output (screenshots): never committed\n*\n")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    name = f"task-{ctx.task_id if ctx.task_id is not None else 'none'}-{stamp}.png"
    path = folder / name
    await _guard(page.screenshot(path=str(path), full_page=args.full_page))
    return f"saved {path.relative_to(root)} ({path.stat().st_size} bytes) of {await _where(page)}"


TOOLS = [
    Tool(
        "browser_open",
        "Open a URL (http or https) in your browser page.",
        BrowserOpenInput,
        browser_open,
    ),
    Tool(
        "browser_text",
        "Read the visible text of the open page (or of the element matching a selector).",
        BrowserTextInput,
        browser_text,
        read_only=True,
    ),
    Tool(
        "browser_snapshot",
        "Read the open page's accessibility tree (roles, names, values); each element has a "
        "[ref=...] usable as the selector 'aria-ref=...' in browser_click and browser_fill.",
        BrowserSnapshotInput,
        browser_snapshot,
        read_only=True,
    ),
    Tool(
        "browser_click",
        "Click an element of the open page.",
        BrowserClickInput,
        browser_click,
    ),
    Tool(
        "browser_fill",
        "Type a value into a form field of the open page.",
        BrowserFillInput,
        browser_fill,
    ),
    Tool(
        "browser_screenshot",
        "Save a screenshot of the open page in the worktree (.agentos/screenshots/) and "
        "return its path.",
        BrowserScreenshotInput,
        browser_screenshot,
        read_only=True,
    ),
]
