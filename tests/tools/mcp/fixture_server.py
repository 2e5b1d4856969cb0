"""An MCP server for the tests, built with the real `mcp` server library: tools that
show what the server was given (its environment), misbehave (crash mid-call, hang,
flood) or answer plainly. `python fixture_server.py` serves stdio; `--http PORT` serves
streamable HTTP and refuses every request without `Authorization: Bearer $FIXTURE_TOKEN`.
`--die-at-start` exits before speaking (a server that fails to start)."""

from __future__ import annotations

import os
import sys
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("fixture")


@server.tool()
def echo_env(name: str) -> str:
    """The value of one of this server's environment variables."""
    return f"{name}={os.environ.get(name, '(unset)')}"


@server.tool()
def env_names() -> str:
    """The names of every environment variable this server got."""
    return " ".join(sorted(os.environ))


@server.tool()
def add(a: int, b: int) -> str:
    """Add two numbers."""
    return str(a + b)


@server.tool()
def crash() -> str:
    """Exit the server process in the middle of the call."""
    sys.stdout.flush()
    os._exit(3)


@server.tool()
def hang(seconds: float) -> str:
    """Answer after `seconds`."""
    time.sleep(seconds)
    return "woke"


@server.tool()
def flood(chars: int) -> str:
    """Answer with `chars` characters."""
    return "x" * chars


@server.tool()
def fail(reason: str) -> str:
    """Raise an error (the result says isError)."""
    raise ValueError(reason)


def main() -> None:
    args = sys.argv[1:]
    if "--die-at-start" in args:
        print("fixture: cannot start (told to die)", file=sys.stderr)
        sys.exit(7)
    if "--http" in args:
        import uvicorn
        from starlette.responses import PlainTextResponse

        port = int(args[args.index("--http") + 1])
        token = os.environ["FIXTURE_TOKEN"]
        app = server.streamable_http_app()

        async def guarded(scope, receive, send):  # type: ignore[no-untyped-def]
            if scope["type"] == "http":
                headers = dict(scope.get("headers") or [])
                if headers.get(b"authorization", b"").decode() != f"Bearer {token}":
                    await PlainTextResponse("unauthorized", status_code=401)(scope, receive, send)
                    return
            await app(scope, receive, send)

        uvicorn.run(guarded, host="127.0.0.1", port=port, log_level="warning")
        return
    server.run("stdio")


if __name__ == "__main__":
    main()
