"""Which addresses a tool may reach: no loopback, private, link-local... unless the role says.

A model that reads a web page or a file can be told by it to fetch
`http://127.0.0.1:5432/`, `http://169.254.169.254/latest/meta-data/` (a cloud's
credentials) or an admin page on the LAN: server-side request forgery. Every HTTP
request a tool makes (the browser's navigations, redirects and subresources, and any
future HTTP or MCP tool) is checked here after DNS resolution: the host's every
address must be global unicast. IPv4-mapped, 6to4 and Teredo IPv6 addresses are
judged by the IPv4 address they carry.

The role relaxes it with `ToolContext.allow_private_network` (everything) or
`ToolContext.private_hosts` ("host:port" or "host" entries, e.g. a dev server the role
is meant to test).

Not covered: DNS rebinding between our lookup and the browser's own (a name that
answers a public address to us and 127.0.0.1 a moment later to chromium). Closing that
needs a proxy that connects to the address it checked; the sandbox's network
namespace already keeps shell commands off 127.0.0.1 unless the role allows network.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from agentos.tools.base import ToolContext, ToolError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
WEB_SCHEMES = frozenset({"http", "https", "ws", "wss"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class AddressRefused(ToolError):
    """A request to an address the role does not allow."""


@dataclass(frozen=True)
class NetworkPolicy:
    """What a tool may reach beyond the public internet."""

    allow_private: bool = False
    private_hosts: frozenset[str] = frozenset()

    @classmethod
    def of(cls, ctx: ToolContext) -> NetworkPolicy:
        """The policy of a tool context."""
        return cls(ctx.allow_private_network, frozenset(h.lower() for h in ctx.private_hosts))

    def exempt(self, host: str, port: int) -> bool:
        """True when the role allows this host (or host:port) whatever its address."""
        host = host.lower().strip("[]")
        return (
            self.allow_private
            or host in self.private_hosts
            or (f"{host}:{port}" in self.private_hosts)
        )


def _embedded_ipv4(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None):
            if inner is not None:
                return inner
    return ip


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why an address is not public ('loopback', 'private'...), or None when it is."""
    ip = _embedded_ipv4(ip)
    for attr, what in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_reserved", "reserved"),
        ("is_private", "private"),
    ):
        if getattr(ip, attr):
            return what
    if not ip.is_global:  # shared address space (100.64/10), documentation ranges...
        return "non-global"
    return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host resolves to (a literal address resolves to itself)."""
    host = host.strip("[]")
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ToolError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    out: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        addr = str(sockaddr[0]).split("%", 1)[0]  # an IPv6 scope id is not part of it
        out.append(ipaddress.ip_address(addr))
    return out


def check_addresses(
    host: str, port: int, addresses: Iterable[IPAddress], policy: NetworkPolicy
) -> None:
    """AddressRefused when any address of the host is not public and the role does not allow it."""
    if policy.exempt(host, port):
        return
    for ip in addresses:
        why = forbidden_reason(ip)
        if why is not None:
            shown = host if host.strip("[]") == str(ip) else f"{host} ({ip})"
            raise AddressRefused(
                f"refused to connect to {shown}: a {why} address; this role may reach only "
                "public addresses (a role allows more with allow_private_network or "
                "private_hosts)"
            )


async def check_url(url: str, policy: NetworkPolicy) -> None:
    """AddressRefused (or ToolError) unless the URL is http(s)/ws(s) to an allowed address."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in WEB_SCHEMES:
        raise ToolError(f"only http(s) URLs may be fetched, not {scheme or url!r}")
    host = parts.hostname
    if not host:
        raise ToolError(f"{url}: no host")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise ToolError(f"{url}: bad port") from exc
    if policy.exempt(host, port):
        return
    check_addresses(host, port, await resolve(host, port), policy)


# ------------------------------------------------------------------ proxy ----

PROXY_HEAD_LIMIT = 64 * 1024
CONNECT_TIMEOUT = 15.0
HOP_HEADERS = (b"proxy-connection", b"proxy-authorization", b"connection", b"keep-alive")


class GuardedProxy:
    """An HTTP forward proxy on 127.0.0.1 that connects only where the policy allows.

    The browser sends every request through it (redirect hops, subresources, and
    WebSockets, which Chromium tunnels with CONNECT like https). For each connection it
    resolves the host, checks every address, and connects to the address it checked,
    so the browser's own resolver never decides where a request goes (no DNS
    rebinding). Plain http requests are forwarded one per connection
    (`Connection: close`); https and WebSockets are tunnelled opaquely.
    """

    def __init__(self, policy: NetworkPolicy) -> None:
        self.policy = policy
        self.refusals: list[str] = []
        self.errors: list[str] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>, for the browser's proxy setting."""
        assert self._server is not None, "start() first"
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> GuardedProxy:
        """Listen on an ephemeral loopback port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        """Stop listening and drop every open tunnel."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > PROXY_HEAD_LIMIT:
            return
        request_line, *header_lines = head[:-4].split(b"\r\n")
        method, target, version = request_line.split(b" ", 2)
        if method == b"CONNECT":
            host, _, port_text = target.decode("latin-1").rpartition(":")
            port = int(port_text)
            rest = b""
        else:
            parts = urlsplit(target.decode("latin-1"))
            if parts.scheme != "http" or not parts.hostname:
                await _reply(writer, 400, "only absolute http:// URLs are proxied")
                return
            host, port = parts.hostname, parts.port or 80
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            kept = [
                h for h in header_lines if h.split(b":", 1)[0].strip().lower() not in HOP_HEADERS
            ]
            rest = (
                b"\r\n".join(
                    [
                        b" ".join([method, path.encode("latin-1"), version]),
                        *kept,
                        b"Connection: close",
                    ]
                )
                + b"\r\n\r\n"
            )
        host = host.strip("[]")
        try:
            addresses = [] if self.policy.exempt(host, port) else await resolve(host, port)
            check_addresses(host, port, addresses, self.policy)
            target_ip = str(addresses[0]) if addresses else host
            upstream_r, upstream_w = await asyncio.wait_for(
                asyncio.open_connection(target_ip, port), CONNECT_TIMEOUT
            )
        except AddressRefused as exc:
            self.refusals.append(str(exc))
            await _reply(writer, 403, str(exc))
            return
        except (ToolError, OSError, TimeoutError) as exc:
            if isinstance(exc, OSError) and exc.errno:
                why = os.strerror(exc.errno)  # asyncio's own text names no reason
            else:
                why = str(exc)
            self.errors.append(f"cannot connect to {host}:{port}: {why or type(exc).__name__}")
            await _reply(writer, 502, self.errors[-1])
            return
        try:
            if method == b"CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:
                upstream_w.write(rest)
                await upstream_w.drain()
            await _pipe_both(reader, writer, upstream_r, upstream_w)
        finally:
            upstream_w.close()


PROXY_VERDICT = "x-agentos-proxy"  # marks the proxy's own answers: "refused" or "error"


async def _reply(writer: asyncio.StreamWriter, status: int, text: str) -> None:
    body = text.encode("utf-8", errors="replace")
    reason = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}.get(status, "Error")
    verdict = "refused" if status == 403 else "error"
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"{PROXY_VERDICT}: {verdict}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + body)
    with contextlib.suppress(OSError):
        await writer.drain()


async def _pipe_both(
    a_r: asyncio.StreamReader,
    a_w: asyncio.StreamWriter,
    b_r: asyncio.StreamReader,
    b_w: asyncio.StreamWriter,
) -> None:
    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while chunk := await src.read(65_536):
                dst.write(chunk)
                await dst.drain()
        with contextlib.suppress(OSError):
            if dst.can_write_eof():
                dst.write_eof()

    up = asyncio.create_task(pipe(a_r, b_w))
    down = asyncio.create_task(pipe(b_r, a_w))
    try:
        # over when the server side closes (after a plain http response, since we asked
        # for Connection: close) or shortly after the browser hangs up
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        if not down.done():  # the browser hung up first: let the server finish briefly
            await asyncio.wait({down}, timeout=5.0)
    finally:
        for t in (up, down):
            t.cancel()
        for t in (up, down):
            with contextlib.suppress(BaseException):
                await t
