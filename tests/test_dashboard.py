"""`agentos dashboard`: the real command in a subprocess, opened in headless Debian chromium.

The board must render in the page, a task inserted with psql (through `agentos db psql`)
must appear in it, keys typed in the page must reach mission control, and the page must
load nothing from outside this machine. The guards (token, origin, loopback, session
cap) are checked over plain HTTP and WebSocket clients.

The browser test skips, with the reason, where Playwright or chromium is missing (as
tests/tools/test_browser.py does); .ci/run installs chromium.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from agentos.tools.browser import browser_executable

HAVE_PLAYWRIGHT = importlib.util.find_spec("playwright") is not None
HAVE_CHROMIUM = Path(browser_executable()).is_file()
needs_browser = pytest.mark.skipif(
    not (HAVE_PLAYWRIGHT and HAVE_CHROMIUM),
    reason=(
        "needs Playwright (pip install 'agentos[dev]')"
        if not HAVE_PLAYWRIGHT
        else f"needs chromium at {browser_executable()} (apt-get install chromium)"
    ),
)
URL_LINE = re.compile(r"^mission control: (http://\S+)/\?token=(\S+)  \(Ctrl-C stops it\)$")


class Dashboard:
    """`agentos dashboard` running in a subprocess; stdout and stderr collected."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agentos.cli.main", "dashboard", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for t in self._readers:
            t.start()
        deadline = time.monotonic() + 60
        while not any(URL_LINE.match(ln) for ln in self.out):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"dashboard did not start: {self.out} {self.err}")
            time.sleep(0.05)
        m = next(m for ln in self.out if (m := URL_LINE.match(ln)))
        self.base, self.token = m.group(1), m.group(2)
        self.url = f"{self.base}/?token={self.token}"

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def tui_processes(self) -> list[psutil.Process]:
        """The mission control processes it runs (one per open page)."""
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [p for p in children if _is_tui(p)]

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for t in self._readers:
            t.join(timeout=5)
        return self.proc.returncode


def _is_tui(p: psutil.Process) -> bool:
    try:
        return p.cmdline()[-2:] == ["agentos.cli.main", "tui"]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def dashboard(cli_env: dict[str, str]) -> Iterator[Dashboard]:
    d = Dashboard(cli_env, "--port", "0")
    try:
        yield d
    finally:
        d.stop()


# Test-only window into the page: the xterm.js Terminal that textual.js creates is kept
# in a closure; this catches it when it is assigned to `.terminal`, so the test reads
# the very buffer the page draws (public xterm API: buffer.active.getLine()).
CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, 'terminal', {
  configurable: true,
  set(v) {
    Object.defineProperty(this, 'terminal',
      {value: v, writable: true, configurable: true, enumerable: true});
    if (v && v.buffer && typeof v.write === 'function' && !window.__term) window.__term = v;
  },
});
"""
SCREEN = """() => {
  const t = window.__term;
  if (!t) return '';
  const b = t.buffer.active, rows = [];
  for (let i = 0; i < t.rows; i++) {
    const line = b.getLine(b.viewportY + i);
    rows.push(line ? line.translateToString(true) : '');
  }
  return rows.join('\\n');
}"""


def _until_screen(page: Any, *needles: str, timeout: float = 30) -> str:
    check = (
        "(needles) => { const s = (" + SCREEN + ")(); return needles.every(n => s.includes(n)); }"
    )
    page.wait_for_function(check, arg=list(needles), timeout=timeout * 1000)
    return str(page.evaluate(SCREEN))


@needs_browser
def test_the_board_in_chromium_shows_a_task_inserted_with_psql(
    dashboard: Dashboard, cli_env: dict[str, str], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=browser_executable(),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})

            def only_this_machine(route: Any) -> None:
                url = route.request.url
                if url.startswith((dashboard.base + "/", dashboard.base.replace("http", "ws"))):
                    route.continue_()
                else:
                    outside.append(url)
                    route.abort()

            page.route("**/*", only_this_machine)
            page.add_init_script(CATCH_TERMINAL)
            page.goto(dashboard.url)
            board = _until_screen(page, "inbox 0", "in progress 0", "review 0", "agents 0")
            assert "AgentOS" in board and "activity" in board
            assert len(dashboard.tui_processes()) == 1

            r = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "agentos.cli.main",
                    "db",
                    "psql",
                    "-c",
                    "INSERT INTO tasks (title, role, description) "
                    "VALUES ('Made in psql', 'worker', 'it shows in the browser')",
                ],
                env=cli_env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert r.returncode == 0, r.stderr
            inserted = time.monotonic()
            board = _until_screen(page, "inbox 1", "#1 Made in psql", timeout=15)
            print(f"the psql task was on the page {time.monotonic() - inserted:.3f} s later")

            # keys typed in the page reach mission control: 1 = inbox, enter = open the task
            page.focus(".xterm-helper-textarea")
            page.keyboard.press("1")
            page.keyboard.press("Enter")
            shown = _until_screen(page, "Description", "it shows in the browser", timeout=15)
            assert "1 Overview" in shown
            page.screenshot(path=str(tmp_path / "dashboard.png"))
            page.close()
        finally:
            browser.close()
    assert outside == [], outside  # nothing fetched from the internet (fonts included)
    # the page gone, its mission control process ends
    _wait(lambda: dashboard.tui_processes() == [], 15, "the page's mission control to exit")


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def _ws(url: str, origin: str | None) -> tuple[int | None, Any, Any]:
    import aiohttp

    session = aiohttp.ClientSession()
    headers = {"Origin": origin} if origin else {}
    try:
        ws = await session.ws_connect(url + "?width=100&height=30", headers=headers)
    except aiohttp.WSServerHandshakeError as exc:
        await session.close()
        return exc.status, None, None
    return 101, ws, session


async def _screen_until(ws: Any, needle: bytes, timeout: float = 30) -> bytes:
    """The screen bytes a session sends, until needle has been drawn."""
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        msg = await asyncio.wait_for(ws.receive(), timeout=max(0.1, deadline - time.monotonic()))
        assert msg.type.name == "BINARY", msg
        seen += msg.data
    return seen


def test_only_the_token_opens_it_and_sessions_are_capped(cli_env: dict[str, str]) -> None:
    d = Dashboard(cli_env, "--port", "0", "--max-sessions", "1")
    try:
        assert d.base.startswith("http://127.0.0.1:")
        assert _get(d.base + "/")[0] == 403
        assert _get(d.base + "/?token=" + "x" * len(d.token))[0] == 403
        status, page = _get(d.url)
        assert status == 200
        assert "/static/js/textual.js" in page and f"/ws/{d.token}" in page
        assert f'"ws://{d.base[len("http://") :]}/ws/' in page
        # behind a TLS proxy the page's WebSocket is wss
        assert "wss://" in _get(d.url, {"X-Forwarded-Proto": "https"})[1]
        # nothing on the page points off this server (textual-serve's own page does)
        assert not re.search(r"(src|href)=\"https?://", page), page
        assert _get(d.base + "/static/js/textual.js")[0] == 200  # static files: no token

        ws_base = d.base.replace("http://", "ws://") + "/ws/"

        async def sessions() -> None:
            assert (await _ws(ws_base + "wrong", None))[0] == 403
            assert (await _ws(ws_base + d.token, "http://evil.example"))[0] == 403
            status, ws, session = await _ws(ws_base + d.token, d.base)
            assert status == 101
            try:
                # mission control starts and draws the board
                await _screen_until(ws, b"inbox")
                assert len(d.tui_processes()) == 1
                # a second tab is over the cap
                assert (await _ws(ws_base + d.token, d.base))[0] == 503
            finally:
                await ws.close()
                await session.close()

        asyncio.run(sessions())
        _wait(lambda: d.tui_processes() == [], 15, "the closed session's process to exit")
    finally:
        code = d.stop()
    assert code == 0, d.err
    # the token is printed once, on stdout, and logged nowhere
    assert sum(d.token in ln for ln in d.out) == 1
    assert not any(d.token in ln for ln in d.err), d.err
    assert not any("Traceback" in ln for ln in d.out + d.err), d.out + d.err


def test_stopping_it_ends_the_open_sessions(cli_env: dict[str, str]) -> None:
    d = Dashboard(cli_env, "--port", "0")
    ws_url = d.base.replace("http://", "ws://") + "/ws/" + d.token
    procs: list[psutil.Process] = []

    async def one_session() -> None:
        status, ws, session = await _ws(ws_url, d.base)
        assert status == 101
        await _screen_until(ws, b"inbox")
        procs.extend(d.tui_processes())
        assert len(procs) == 1
        started = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        msg = await asyncio.wait_for(ws.receive(), timeout=15)
        while msg.type.name == "BINARY":  # the last frames of the screen, then the close
            msg = await asyncio.wait_for(ws.receive(), timeout=15)
        assert msg.type.name in ("CLOSE", "CLOSED", "CLOSING"), msg
        print(f"session closed {time.monotonic() - started:.2f} s after SIGTERM")
        await session.close()

    try:
        asyncio.run(one_session())
        assert d.proc.wait(timeout=15) == 0, d.err
    finally:
        d.stop()
    assert not any("Traceback" in ln for ln in d.out + d.err), d.out + d.err
    _wait(
        lambda: not any(p.is_running() and p.status() != "zombie" for p in procs),
        10,
        "mission control to exit with the dashboard",
    )


def test_a_non_loopback_host_needs_allow_remote(cli_env: dict[str, str], db_url: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "agentos.cli.main", "dashboard", "--host", "0.0.0.0"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("error: --host 0.0.0.0 is not a loopback address")
    assert "--allow-remote" in r.stderr and len(r.stderr.splitlines()) == 1

    d = Dashboard(cli_env, "--host", "0.0.0.0", "--port", "0", "--allow-remote")
    try:
        assert any(ln.startswith("WARNING: mission control is served on 0.0.0.0:") for ln in d.err)
        port = d.base.rsplit(":", 1)[1]
        # reachable on every address of this machine; here through loopback
        assert _get(f"http://127.0.0.1:{port}/?token={d.token}")[0] == 200
    finally:
        assert d.stop() == 0


def test_a_port_in_use_is_a_one_line_error(cli_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "agentos.cli.main", "dashboard", "--port", str(port)],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr


def test_help_does_not_start_anything() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTOS_")}
    env["AGENTOS_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    r = subprocess.run(
        [sys.executable, "-m", "agentos.cli.main", "dashboard", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and "127.0.0.1" in r.stdout and "--allow-remote" in r.stdout
