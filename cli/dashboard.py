"""`agentos dashboard`: the Textual mission control (tui/) served to a web browser.

textual-serve runs one `agentos tui` process per browser tab, with Textual's web driver,
and relays its screen and keys over a WebSocket to xterm.js in the page; the page, its
script and its fonts come from this server, so it works with no internet access.

Serving a program that can create, cancel and retry tasks and message agents is
guarded (decision 051):
* it listens on 127.0.0.1 unless told otherwise, and a non-loopback --host is refused
  without --allow-remote (and then warned about on stderr);
* every URL but the static files needs the random access token printed at start (as
  Jupyter does), compared in constant time, so another local user, or a web page open
  in the browser, cannot open a session; the WebSocket also refuses a foreign Origin;
* the token is never logged: no access log is written, and the line that prints the
  URL goes to stdout only;
* at most --max-sessions tabs at once (each is a process with its own connections).
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import secrets
import shlex
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from agentos.cli.common import CONTEXT, EXIT_BAD_INPUT, fail, handle_errors, open_kernel, run

TITLE = "AgentOS mission control"
TEMPLATE = Path(__file__).with_name("dashboard.html")


def _addresses(host: str, port: int) -> list[tuple[Any, ...]]:
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        fail(f"--host {host!r}: cannot resolve it ({exc.strerror})", EXIT_BAD_INPUT)
        raise  # unreachable


def is_loopback(infos: list[tuple[Any, ...]]) -> bool:
    """Whether every address a host name resolved to is a loopback address."""
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free port); one-line error if not."""
    info = _addresses(host, port)[0]
    family, kind, proto, _name, address = info
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 1)
    sock.setblocking(False)
    return sock


def url_host(sock: socket.socket, host: str) -> str:
    """The host part of the URL to print: the bound address, or this machine's name."""
    address = sock.getsockname()[0]
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.is_unspecified:
        return socket.gethostname()
    return f"[{address}]" if ip.version == 6 else address


def make_server(command: str, *, port: int, token: str, max_sessions: int, public_url: str) -> Any:
    """A textual-serve Server for `command`, with the token, origin and session guards."""
    import aiohttp_jinja2
    import jinja2
    from aiohttp import WSCloseCode, web
    from textual_serve.app_service import AppService
    from textual_serve.server import Server

    class DashboardServer(Server):
        """textual-serve's server, guarded; its page is ours (offline)."""

        def __init__(self) -> None:
            super().__init__(command, host="127.0.0.1", port=port, title=TITLE)
            self.public_url = public_url
            self.token = token
            self.max_sessions = max_sessions
            self.sockets: set[web.WebSocketResponse] = set()

        async def _make_app(self) -> web.Application:
            app = web.Application(middlewares=[self.guard], client_max_size=64 * 1024)
            aiohttp_jinja2.setup(
                app, loader=jinja2.FileSystemLoader(str(TEMPLATE.parent)), autoescape=True
            )
            app.add_routes(
                [
                    web.get("/", self.handle_index, name="index"),
                    # the token is in the path: textual.js appends "?width=..&height=.."
                    web.get("/ws/{token}", self.handle_websocket, name="websocket"),
                    web.static("/static", self.statics_path, name="static"),
                ]
            )
            app.on_shutdown.append(self.close_sessions)
            return app

        @web.middleware
        async def guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
            if request.path.startswith("/static/"):
                static: web.StreamResponse = await handler(request)
                return static  # textual-serve's script, styles and fonts
            given = request.match_info.get("token") or request.query.get("token", "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return web.Response(
                    status=403,
                    text="AgentOS mission control: open the URL that `agentos dashboard` "
                    "printed (it carries the access token).\n",
                )
            origin = request.headers.get("Origin")
            if request.path.startswith("/ws/") and origin is not None:
                # the page's own host (the scheme may differ behind a TLS proxy)
                if urlsplit(origin).netloc != request.host:
                    return web.Response(status=403, text="foreign origin\n")
            response: web.StreamResponse = await handler(request)
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.setdefault("Referrer-Policy", "no-referrer")
            return response

        @aiohttp_jinja2.template("dashboard.html")
        async def handle_index(self, request: web.Request) -> dict[str, Any]:
            font_size = request.query.get("fontsize", "16")
            # behind a TLS proxy the page is https and its WebSocket must be wss
            forwarded = request.headers.get("X-Forwarded-Proto", "").lower() == "https"
            scheme = "wss" if request.secure or forwarded else "ws"
            return {
                "font_size": int(font_size) if font_size.isdigit() else 16,
                "app_websocket_url": f"{scheme}://{request.host}/ws/{self.token}",
                "config": {"static": {"url": "/static/"}},
                "application": {"name": TITLE},
            }

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            if len(self.sockets) >= self.max_sessions:
                raise web.HTTPServiceUnavailable(
                    text=f"already {self.max_sessions} sessions open "
                    "(agentos dashboard --max-sessions)\n",
                )
            websocket = web.WebSocketResponse(heartbeat=15)
            width = _int(request.query.get("width"), 80)
            height = _int(request.query.get("height"), 24)
            await websocket.prepare(request)
            self.sockets.add(websocket)

            async def close() -> None:
                await websocket.close()

            service = AppService(
                self.command,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=close,
                download_manager=self.download_manager,
                debug=False,
            )
            try:
                await service.start(width, height)
                await self._process_messages(websocket, service)
            finally:
                self.sockets.discard(websocket)
                with contextlib.suppress(Exception):
                    await service.stop()  # tells the app to quit, reads it to the end
                await _reap(service)
                with contextlib.suppress(Exception):
                    await websocket.close()
            return websocket

        async def close_sessions(self, app: web.Application) -> None:
            for websocket in list(self.sockets):
                await websocket.close(code=WSCloseCode.GOING_AWAY, message=b"dashboard stopped")

    return DashboardServer()


async def _reap(service: Any, grace: float = 10.0) -> None:
    """Wait for a session's process to exit (killed after `grace` seconds).

    textual-serve's AppService reads the app's output to its end but never waits for
    the process; unreaped, it would outlive the session and be torn down only when the
    event loop closes.
    """
    import asyncio

    process = getattr(service, "_process", None)
    if process is None or process.returncode is not None:
        return
    try:
        await asyncio.wait_for(process.wait(), timeout=grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def _int(value: str | None, default: int) -> int:
    try:
        return max(10, min(1000, int(value or default)))
    except ValueError:
        return default


@click.command("dashboard", context_settings=CONTEXT)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="TCP port (0: any free port).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow a --host that is not a loopback address: whoever reaches it with the URL "
    "drives the team.",
)
@click.option(
    "--max-sessions",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Browser tabs at once (each runs its own mission control process).",
)
@handle_errors
def dashboard(port: int, host: str, allow_remote: bool, max_sessions: int) -> None:
    """Mission control in a web browser: `agentos tui`, served on 127.0.0.1.

    Open the printed URL (it carries a random access token); each tab runs its own
    mission control, live from the database. Ctrl-C stops it.
    """
    loopback = is_loopback(_addresses(host, port))
    if not loopback and not allow_remote:
        fail(
            f"--host {host} is not a loopback address: anyone who can reach it and has the "
            "URL could create, cancel and retry tasks and message agents; add --allow-remote "
            "to serve it anyway (behind TLS), or use --host 127.0.0.1 and an SSH tunnel",
            EXIT_BAD_INPUT,
        )

    async def _prepare() -> None:  # the database up (embedded started) and migrated
        kernel = await open_kernel()
        await kernel.close()

    run(_prepare())
    sock = listen(host, port)
    token = secrets.token_urlsafe(24)
    bound_port = sock.getsockname()[1]
    base = f"http://{url_host(sock, host)}:{bound_port}"
    if not loopback:
        click.echo(
            f"WARNING: mission control is served on {host}:{bound_port}, reachable from other "
            "machines, unencrypted: whoever has the URL (its token) can create, cancel and "
            "retry tasks and message agents. Prefer 127.0.0.1 and an SSH tunnel, or put it "
            "behind TLS.",
            err=True,
        )
    # run by /bin/sh (textual-serve's choice); exec: the session's process is the app's
    command = "exec " + shlex.join([sys.executable, "-m", "agentos.cli.main", "tui"])
    server = make_server(
        command, port=bound_port, token=token, max_sessions=max_sessions, public_url=base
    )
    click.echo(f"mission control: {base}/?token={token}  (Ctrl-C stops it)", nl=True)
    sys.stdout.flush()
    _serve(server, sock)


def _serve(server: Any, sock: socket.socket) -> None:
    """Run the web server until SIGINT or SIGTERM; no access log (URLs carry the token)."""
    import asyncio
    import logging

    from aiohttp import web

    logging.getLogger("textual-serve").setLevel(logging.WARNING)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        web.run_app(
            server._make_app(),
            sock=sock,
            access_log=None,
            handle_signals=True,
            shutdown_timeout=5.0,
            print=None,
            loop=loop,
        )
    finally:
        with contextlib.suppress(Exception):
            loop.close()
