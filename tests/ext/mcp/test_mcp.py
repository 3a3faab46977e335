"""MCP tools, against a real MCP server that the tests start (stdio, and HTTP on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from mcp import types
from mcp.server import Server, ServerRequestContext
from mcp.server.mcpserver import MCPServer

from miniagents import MiniAgents
from miniagents.errors import ArgumentError, StreamCancelledError, ToolError
from miniagents.ext.mcp import (
    DEFAULT_MAX_RESULT_CHARS,
    DEFAULT_OPEN_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
    MCPSession,
    MCPSessionError,
    MCPTool,
    mcp_server,
)
from miniagents.ext.tools import (
    ToolCallMessage,
    ToolNameConflictError,
    ToolResultMessage,
    ToolSet,
)
from miniagents.ext.tools.running import error_part
from miniagents.testing.virtual_time import virtual_time
from tests.ext.mcp.served import divide
from tests.ext.mcp.server import server as in_process_server
from tests.subprocesses import ProcessGroups

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[3]
SERVER = ["-m", "tests.ext.mcp.server"]
SAFETY = 30.0
"""Seconds before a test that would hang fails instead (never reached when the code works)."""


async def soon(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, SAFETY)


def call(tool_name: str, call_id: str = "c1", **arguments: object) -> ToolCallMessage:
    return ToolCallMessage(tool_name=tool_name, arguments=arguments, call_id=call_id)


def stdio_session(prefix: str = "") -> MCPSession:
    return MCPSession.stdio(sys.executable, [*SERVER, "stdio"], cwd=ROOT, prefix=prefix)


@contextlib.contextmanager
def http_server() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The test server, serving streamable HTTP on a free port of 127.0.0.1, and its URL.

    At the exit the server is asked to stop (SIGTERM), then ended with every process it
    started, whatever happened (and its output closed).
    """
    with ProcessGroups() as started:
        process = started.python([*SERVER, "http"], ROOT, stdout=subprocess.PIPE)
        try:
            assert process.stdout is not None
            port = process.stdout.readline().strip()  # it prints its port once it listens
            assert port.isdigit(), f"the MCP test server did not start (it printed {port!r})"
            yield process, f"http://127.0.0.1:{port}/mcp"
        finally:
            process.terminate()
            process.wait(timeout=SAFETY)


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    """The URL of the test server over HTTP, for every test of the module."""
    with http_server() as (_, url):
        yield url


@pytest.fixture(params=["stdio", "http"])
def connect(request: pytest.FixtureRequest) -> Callable[[], MCPSession]:
    """Makes a session with the test server, over each transport.

    (Each test opens it in its own ``async with``: the SDK's task groups must be left by the
    task that entered them, and an async fixture's teardown runs in another task.)
    """
    if request.param == "stdio":
        return stdio_session
    url: str = request.getfixturevalue("http_url")
    return lambda: MCPSession.http(url)


async def results(tools: ToolSet, *calls: ToolCallMessage) -> list[ToolResultMessage]:
    async with MiniAgents():
        messages = await soon(tools.run_all(calls))
    assert all(isinstance(message, ToolResultMessage) for message in messages)
    return list(messages)


def test_the_defaults_are_the_packages_names_and_the_sessions_defaults() -> None:
    import miniagents.ext.mcp

    exported = {"DEFAULT_MAX_RESULT_CHARS", "DEFAULT_OPEN_TIMEOUT", "DEFAULT_READ_TIMEOUT"}
    assert exported <= set(miniagents.ext.mcp.__all__)
    for made_by in (MCPSession, MCPSession.stdio, MCPSession.http):
        parameters = inspect.signature(made_by).parameters
        assert parameters["read_timeout"].default == DEFAULT_READ_TIMEOUT == 300
        assert parameters["open_timeout"].default == DEFAULT_OPEN_TIMEOUT == 60
        assert parameters["max_result_chars"].default == DEFAULT_MAX_RESULT_CHARS == 1_000_000


async def test_the_servers_tools_come_with_its_own_names_descriptions_and_schemas(
    connect: Callable[[], MCPSession],
) -> None:
    async with connect() as session:
        assert [tool.name for tool in session] == [
            "add",
            "text_shout",
            "refuse",
            "meet",
            "hang",
            "cancelled",
            "big",
            "pid",
        ]
        add, shout = session.tools[:2]
    assert isinstance(add, MCPTool)
    assert add.description.startswith("Add two numbers.")
    assert add.parameters["properties"] == {
        "a": {"title": "A", "type": "integer"},
        "b": {"title": "B", "type": "integer"},
    }
    assert add.parameters["required"] == ["a", "b"]
    assert (shout.name, shout.server_name) == ("text_shout", "text.shout")


async def test_calls_give_the_servers_results_as_text(connect: Callable[[], MCPSession]) -> None:
    async with connect() as session:
        add, shout = await results(
            ToolSet(session), call("add", "c1", a=2, b=3), call("text_shout", "c2", text="hi")
        )
    assert add == ToolResultMessage(text="5", tool_name="add", call_id="c1", is_error=False)
    assert (str(shout), shout.is_error) == ("HI!", False)


async def test_errors_the_server_reports_are_error_results(
    connect: Callable[[], MCPSession],
) -> None:
    async with connect() as session:
        refused, invalid = await results(
            ToolSet(session), call("refuse", reason="no reason"), call("add", a="x")
        )
    assert refused.is_error
    assert str(refused) == "Error executing tool refuse: Refused: no reason"
    assert invalid.is_error
    assert "validation error" in str(invalid)


async def test_a_remote_error_is_logged_without_a_traceback_and_a_local_one_with_it(
    connect: Callable[[], MCPSession], caplog: pytest.LogCaptureFixture
) -> None:
    # (was: each error result of a server was logged with the traceback of our own raise of
    # MCPToolError, which says nothing of the remote failure)
    def local() -> str:
        """Fails here."""
        raise LookupError("no such order")

    async with connect() as session:
        refused, failed = await results(
            ToolSet([*session.tools, local]), call("refuse", reason="gone"), call("local")
        )
    remote_part, local_part = error_part(refused.model_dump()), error_part(failed.model_dump())
    assert remote_part is not None
    assert local_part is not None
    logged = {r.getMessage(): r for r in caplog.records if r.name.startswith("miniagents")}
    [remote] = [r for text, r in logged.items() if remote_part.reference in text]
    [here] = [r for text, r in logged.items() if local_part.reference in text]
    assert remote.levelno == here.levelno == logging.ERROR
    assert remote.exc_info is None
    assert "Refused: gone" in remote.getMessage()  # (the remote text: what the operator needs)
    assert here.exc_info is not None


async def test_calls_of_mcp_tools_run_concurrently(connect: Callable[[], MCPSession]) -> None:
    async with connect() as session:
        first, second = await results(  # each call waits on the server for the other one
            ToolSet(session),
            call("meet", me="ann", other="bob"),
            call("meet", me="bob", other="ann"),
        )
    assert (str(first), str(second)) == ("ann met bob", "bob met ann")


async def test_mcp_tools_mix_with_functions_and_tell_servers_apart_by_prefix() -> None:
    def local_time(city: str) -> str:
        """The local time in a city."""
        return f"12:00 in {city}"

    async with stdio_session(prefix="calc_") as calculator:
        tools = ToolSet([*calculator, local_time])
        assert [tool.name for tool in tools][:2] == ["calc_add", "calc_text_shout"]
        added, timed = await results(
            tools, call("calc_add", a=1, b=1), call("local_time", city="Oslo")
        )
    assert (str(added), str(timed)) == ("2", "12:00 in Oslo")


async def test_cancelling_a_result_cancels_the_call_on_the_server_and_the_session_goes_on(
    connect: Callable[[], MCPSession],
) -> None:
    async with connect() as session, MiniAgents():
        tools = ToolSet(session)
        hanging = tools.run(call("hang", me="h1"))
        assert str(await soon(tools.run(call("meet", me="probe", other="h1")))) == (
            "probe met h1"  # so the call of hang runs on the server now
        )
        hanging.cancel()
        with pytest.raises(StreamCancelledError):
            await soon(hanging)
        assert str(await soon(tools.run(call("cancelled", me="h1")))) == "h1 was cancelled"
        assert str(await soon(tools.run(call("add", a=1, b=2)))) == "3"


class CallersError(Exception):
    """An error of the code inside the session's block."""


async def test_an_error_of_the_block_comes_out_of_it_as_it_is(
    connect: Callable[[], MCPSession],
) -> None:
    error = CallersError("the caller's own")
    with pytest.raises(CallersError) as raised:
        async with connect(), MiniAgents():
            raise error
    assert raised.value is error  # not in an ExceptionGroup of the SDK's task groups
    with pytest.raises(TimeoutError):
        async with connect(), asyncio.timeout(0):
            await asyncio.Event().wait()


async def test_an_http_server_that_dies_gives_error_results_and_the_block_goes_on() -> None:
    """The call the server ran is cut ("closed before it answered"); the connection's task
    then ends with the transport's error, and every later call is told that the connection
    broke, and why. (Either sentence was taken for the later call: it raced that end.)"""
    with http_server() as (process, url):
        async with MCPSession.http(url) as session, MiniAgents():
            tools = ToolSet(session)
            hanging = tools.run(call("hang", me="h1"))
            assert str(await soon(tools.run(call("meet", me="probe", other="h1")))) == (
                "probe met h1"  # so the call of hang runs on the server now
            )
            connection = session._running  # (the task that holds the connection)
            assert connection is not None
            process.kill()
            await asyncio.to_thread(process.wait, SAFETY)
            cut = await soon(hanging)
            await soon(asyncio.wait([connection]))  # it ends as the transport fails
            after = await soon(tools.run(call("add", a=1, b=2)))
            current = asyncio.current_task()
            assert current is not None
            assert current.cancelling() == 0  # nothing cancelled the block
    assert cut.is_error
    assert str(cut) == _gone(f"The connection to the MCP server {url} closed", "hang")
    assert after.is_error
    assert str(after) == (  # (the transport's error: the answer to hang never began)
        f"The connection to the MCP server {url} closed before it answered the call of its "
        "tool add (the server stopped, or could not be reached any more: Server disconnected "
        "without sending a response). Open a new session once the server runs again."
    )  # (was: "... broke: Server disconnected ...", another sentence than a stdio server's)


async def test_a_stdio_server_that_dies_gives_error_results_at_once_and_the_block_goes_on() -> None:
    """The server's process is killed: the call it ran and every later call are error results
    at once (the SDK closes the connection as the server's output ends: no call waits for
    ``read_timeout``), and the session closes without error at the block's end."""
    async with stdio_session() as session, MiniAgents():
        tools = ToolSet(session)
        pid = int(str(await soon(tools.run(call("pid")))))
        hanging = tools.run(call("hang", me="h1"))
        assert str(await soon(tools.run(call("meet", me="probe", other="h1")))) == "probe met h1"
        os.kill(pid, signal.SIGKILL)
        cut = await soon(hanging)
        after = [await soon(tools.run(call("add", f"c{n}", a=1, b=2))) for n in range(2)]
    closed = f"The connection to the MCP server {Path(sys.executable).name} … closed"
    assert str(cut) == _gone(closed, "hang")
    for result in after:
        assert result.is_error
        assert str(result) == _gone(closed, "add")


def _gone(closed: str, tool: str) -> str:
    """What a call of ``tool`` is told of a server that stopped (``closed``: the sentence's
    start, naming it), with no transport's error to tell."""
    return (
        f"{closed} before it answered the call of its tool {tool} (the server stopped, or "
        "could not be reached any more). Open a new session once the server runs again."
    )


class ClosingError(Exception):
    """The error of a transport whose close fails."""


@contextlib.asynccontextmanager
async def failing_close() -> AsyncIterator[Any]:
    """The test server over stdio, through a transport whose close raises."""
    from mcp import StdioServerParameters, stdio_client

    parameters = StdioServerParameters(command=sys.executable, args=[*SERVER, "stdio"], cwd=ROOT)
    async with stdio_client(parameters) as streams:
        yield streams
    raise ClosingError("the transport's close failed")


async def test_an_error_as_the_session_closes_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """(It was dropped: neither logged nor raised.)"""
    with caplog.at_level(logging.WARNING, logger="miniagents.ext.mcp"):
        async with MCPSession(failing_close()) as session:
            [result] = await results(ToolSet(session), call("add", a=1, b=2))
    assert str(result) == "3"
    [record] = caplog.records
    assert record.getMessage().startswith("The connection to the MCP server ")
    assert record.getMessage().endswith(" failed as its session closed; it is closed all the same.")
    assert record.exc_info is not None
    assert "the transport's close failed" in str(record.exc_info[1])


async def test_a_call_past_read_timeout_is_an_error_result_that_names_it() -> None:
    """The SDK's own words (``MCPError: Request 'tools/call' timed out``) named no fix."""
    session = MCPSession.stdio(sys.executable, [*SERVER, "stdio"], cwd=ROOT, read_timeout=0.5)
    async with session, MiniAgents():
        [result] = await results(ToolSet(session), call("hang", me="late"))
        [cancelled] = await results(ToolSet(session), call("cancelled", me="late"))
    assert result.is_error
    assert str(result) == (  # the program's name only: an argument may be a token
        f"The MCP server {Path(sys.executable).name} … did not answer the "
        "call of its tool hang within 0.5 seconds (read_timeout). Call it again, or give the "
        "server longer: MCPSession(..., read_timeout=600), or read_timeout=None to wait as "
        "long as it takes."
    )
    assert str(cancelled) == "late was cancelled"  # the server was told to stop the call


async def test_a_call_the_sessions_block_ends_under_says_so_not_that_the_server_stopped(
    connect: Callable[[], MCPSession], request: pytest.FixtureRequest
) -> None:
    """The session's block ends while a call runs (the ``MiniAgents`` context opened around
    the session, not inside it): the call's error result says so, and how to open them."""
    me = f"ending-{request.node.callspec.id}"  # (the HTTP server is the module's)
    async with MiniAgents():
        async with connect() as session:
            tools = ToolSet(session)
            hanging = tools.run(call("hang", me=me))
            assert str(await soon(tools.run(call("meet", me="probe", other=me)))) == (
                f"probe met {me}"  # so the call of hang runs on the server now
            )
        result = await soon(hanging)
    assert result.is_error
    assert str(result) == (  # (was: "the server stopped, or could not be reached any more")
        "The MCP session of the tool hang closed before its server answered the call: its "
        "`async with` block ended while the call ran. Open the session around the MiniAgents "
        "context, which waits for every tool call: `async with MCPSession(...) as session, "
        "MiniAgents():`."
    )


async def test_a_call_after_the_session_closed_is_an_error_result() -> None:
    async with stdio_session() as closed:
        tools = ToolSet(closed)
    [result] = await results(tools, call("add", a=1, b=2))
    assert result.is_error
    assert str(result) == (  # a sentence, as the model reads it: no "failed: MCPSessionError"
        "The MCP session of the tool add is closed. Call MCP tools inside the "
        "`async with MCPSession(...)` block that listed them."
    )


def assert_not_open(session: MCPSession) -> None:
    with pytest.raises(MCPSessionError, match="is not open") as raised:
        _ = [*session]  # e.g. tools=[*session] with the `async with` forgotten
    assert "async with MCPSession(...) as session:" in str(raised.value)
    with pytest.raises(MCPSessionError, match="is not open"):
        _ = session.tools


async def test_the_tools_of_a_session_that_is_not_open_are_an_error() -> None:
    session = stdio_session()
    assert_not_open(session)  # never opened
    async with session:
        assert next(tool.name for tool in session) == "add"
    assert_not_open(session)  # closed


async def test_a_server_that_does_not_start_is_a_clear_error() -> None:
    broken = MCPSession.stdio(
        sys.executable, ["-c", "print('not an MCP server')", "--token=s3cret"]
    )
    with pytest.raises(MCPSessionError, match="Could not connect to the MCP server") as raised:
        await soon(broken.__aenter__())
    assert isinstance(raised.value, ToolError)
    program = Path(sys.executable).name  # its name only: an argument may be a token
    assert f"Could not connect to the MCP server {program} …" in str(raised.value)
    assert "s3cret" not in str(raised.value)
    assert "s3cret" not in repr(broken)


def test_the_arguments_of_a_command_given_as_one_str_are_refused() -> None:
    with pytest.raises(MCPSessionError, match=r"arguments .* are one str") as raised:
        MCPSession.stdio("python", "server.py --token=s3cret")  # type: ignore[arg-type]
    assert "MCPSession.stdio('python', shlex.split(args))" in str(raised.value)
    assert "s3cret" not in str(raised.value)  # (an argument may be a token)


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"read_timeout": 0}, "read_timeout to be a positive, finite number of seconds; got 0"),
        ({"read_timeout": -1}, "read_timeout to be a positive, finite number of seconds; got -1"),
        ({"read_timeout": "5"}, "read_timeout to be a positive, finite number of seconds; got '5'"),
        ({"prefix": 5}, "prefix to be a str (put before each tool's name); got 5"),
        ({"open_timeout": 0}, "open_timeout to be a positive, finite number of seconds; got 0"),
        ({"max_result_chars": 0}, "max_result_chars to be a whole number of at least 1; got 0"),
    ],
    ids=[
        "zero-timeout",
        "negative-timeout",
        "str-timeout",
        "int-prefix",
        "zero-open-timeout",
        "zero-max-result-chars",
    ],
)
def test_bad_session_arguments_are_refused_when_it_is_made(
    arguments: dict[str, Any], says: str
) -> None:
    """Not when it opens, as the server's failure to list its tools (a bad prefix or
    timeout), nor as every call timing out at once (a timeout of 0 or less)."""
    with pytest.raises(ArgumentError) as raised:
        MCPSession("http://127.0.0.1:1/mcp", **arguments)
    assert str(raised.value).startswith(f"MCPSession needs {says}.")


async def test_a_server_that_never_answers_is_an_error_after_open_timeout(tmp_path: Path) -> None:
    """Not a hang: a server that starts and then says nothing (no handshake) is an error
    after ``open_timeout``, and its process is stopped."""
    pid_file = tmp_path / "pid"
    silent = MCPSession.stdio(
        sys.executable,
        [
            "-c",
            "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)",
            str(pid_file),
        ],
        open_timeout=1.0,
    )
    with pytest.raises(MCPSessionError, match=r"within 1 seconds \(open_timeout\)"):
        await soon(silent.__aenter__())
    assert not _runs_on(pid_file), "the silent server runs on"


_LISTS_A_STRING_SCHEMA = """
import json, sys
for line in sys.stdin:
    asked = json.loads(line)
    if "id" not in asked or "method" not in asked:
        continue
    if asked["method"] == "initialize":
        version = asked["params"]["protocolVersion"]
        info = {"name": "raw", "version": "1"}
        tools = {"tools": {}}
        said = {"result": {"protocolVersion": version, "capabilities": tools, "serverInfo": info}}
    elif asked["method"] == "tools/list":
        tools = [{"name": "fine", "inputSchema": {"type": "object"}},
                 {"name": "odd_tool", "inputSchema": {"type": "string"}}]
        said = {"result": {"tools": tools}}
    else:
        said = {"error": {"code": -32601, "message": "unknown method"}}
    print(json.dumps({"jsonrpc": "2.0", "id": asked["id"], **said}), flush=True)
"""
"""A hand-written stdio MCP server (no SDK, so nothing checks what it sends) that lists a
tool whose inputSchema is not a JSON object schema."""


async def test_a_tool_whose_input_schema_is_not_an_object_schema_is_refused() -> None:
    # no model takes a tool whose arguments are not a JSON object: the session refuses the
    # listing when it opens (the mcp SDK validates it against MCP's schema, which says
    # "type": "object"), naming the server and the field, rather than give it to a model
    odd = MCPSession.stdio(sys.executable, ["-c", _LISTS_A_STRING_SCHEMA])
    with pytest.raises(MCPSessionError, match="failed to list its tools") as raised:
        await soon(odd.__aenter__())
    assert "tools.1.inputSchema.type" in str(raised.value)
    assert "Input should be 'object'" in str(raised.value)


def _runs_on(pid_file: Path) -> bool:
    """Whether the process that wrote ``pid_file`` runs (no file: it never started)."""
    return pid_file.exists() and Path(f"/proc/{pid_file.read_text()}").exists()


async def test_an_http_server_that_is_not_there_is_a_clear_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # nothing listens there
    absent = MCPSession.http(f"http://127.0.0.1:{port}/mcp")
    with pytest.raises(MCPSessionError, match=f"127.0.0.1:{port}"):
        await soon(absent.__aenter__())


async def test_a_servers_url_is_named_without_its_secrets() -> None:
    """Errors are logged, and a tool's error result goes to the model: a token in the URL
    (a user's password, an ``api_key`` in the query) is never shown."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # nothing listens there
    absent = MCPSession.http(f"http://ada:hunter2@127.0.0.1:{port}/mcp?api_key=hunter2#top")
    with pytest.raises(MCPSessionError) as raised:
        await soon(absent.__aenter__())
    assert f"the MCP server http://…@127.0.0.1:{port}/mcp?…: " in str(raised.value)
    assert "hunter2" not in str(raised.value) + repr(absent)
    assert "hunter2" not in repr(MCPSession.http("https://example.com/mcp?token=hunter2"))


async def test_an_in_process_server_works_too() -> None:
    from tests.ext.mcp.server import server

    async with MCPSession(server) as in_process:
        [result] = await results(ToolSet(in_process), call("add", a=20, b=22))
    assert str(result) == "42"


ListTools = Callable[
    [ServerRequestContext[Any], types.PaginatedRequestParams | None],
    Awaitable[types.ListToolsResult],
]


async def fail_to_list(
    ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    raise RuntimeError("the listing broke")


async def list_a_nameless_tool(
    ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[types.Tool(name="", input_schema={"type": "object"})])


@pytest.mark.parametrize(
    ("list_tools", "cause"),
    [(fail_to_list, "Internal server error"), (list_a_nameless_tool, "empty name")],
)
async def test_a_server_that_fails_to_list_its_tools_is_a_clear_error(
    list_tools: ListTools, cause: str
) -> None:
    failing = MCPSession(Server("failing", on_list_tools=list_tools))
    expected = rf"The MCP server 'failing' \(in-process\) failed to list its tools: .*{cause}"
    with pytest.raises(MCPSessionError, match=expected):
        await soon(failing.__aenter__())


def paginated(pages: int | None) -> Server[Any]:
    """A server that lists one tool per page, on ``pages`` pages (None: pages without end)."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        page = int(params.cursor) if params is not None and params.cursor else 0
        tool = types.Tool(name=f"tool_{page}", input_schema={"type": "object"})
        last = pages is not None and page == pages - 1
        return types.ListToolsResult(tools=[tool], next_cursor=None if last else str(page + 1))

    return Server("paged", on_list_tools=list_tools)


async def test_every_page_of_tools_is_listed() -> None:
    async with MCPSession(paginated(150)) as session:
        assert [tool.name for tool in session] == [f"tool_{page}" for page in range(150)]


async def test_a_listing_past_1000_pages_is_an_error_not_a_cut() -> None:
    endless = MCPSession(paginated(None))
    with pytest.raises(MCPSessionError, match="on more than 1000 pages") as raised:
        await soon(endless.__aenter__())
    assert "its last page must have no nextCursor" in str(raised.value)


async def test_two_tools_of_a_server_whose_names_become_one_are_a_clear_error() -> None:
    files = MCPServer("files", log_level="WARNING")

    @files.tool(name="files.read")
    def read_dotted() -> str:
        """Read."""
        return "dotted"

    @files.tool(name="files_read")
    def read_underscored() -> str:
        """Read."""
        return "underscored"

    expected = "two tools, 'files.read' and 'files_read', whose names both become 'fs_files_read'"
    with pytest.raises(MCPSessionError, match=re.escape(expected)) as raised:
        await soon(MCPSession(files, prefix="fs_").__aenter__())
    assert "Rename one of them on the server." in str(raised.value)


async def test_the_same_name_on_two_servers_is_told_to_take_a_prefix() -> None:
    async with (
        MCPSession(mcp_server([divide], name="first")) as first,
        MCPSession(mcp_server([divide], name="second")) as second,
    ):
        with pytest.raises(ToolNameConflictError, match="Two tools are named 'divide'") as raised:
            ToolSet([*first, *second])
    assert 'MCPSession(..., prefix="web_")' in str(raised.value)


def test_without_the_sdk_a_session_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "mcp", None)  # `import mcp` now fails
    with pytest.raises(ImportError, match=r'pip install "miniagents\[mcp\]"'):
        MCPSession.http("http://127.0.0.1:1/mcp")


async def test_a_session_opens_once_at_a_time_and_again_after_it_closed() -> None:
    session = stdio_session()
    async with session:
        with pytest.raises(MCPSessionError, match="open already"):
            await session.__aenter__()
    async with session:
        [result] = await results(ToolSet(session), call("add", a=1, b=1))
    assert str(result) == "2"


async def test_a_hung_tool_is_an_error_result_after_the_default_read_timeout() -> None:
    """A server whose tool never answers does not hold the call forever: by default the
    session waits 300 seconds (of a virtual clock, so the test takes no time)."""
    async with MCPSession(in_process_server) as session, MiniAgents():
        with virtual_time() as clock:
            [result] = await asyncio.wait_for(
                ToolSet(session).run_all([call("hang", me="default")]), 3600
            )
            elapsed = clock.elapsed
    assert isinstance(result, ToolResultMessage)
    assert result.is_error
    assert str(result).startswith(
        "The MCP server 'miniagents-test-server' (in-process) did not answer the call of its "
        "tool hang within 300 seconds (read_timeout)."
    )
    assert elapsed == DEFAULT_READ_TIMEOUT == 300


def off_schema_server() -> Server[Any]:
    """A server whose tool ``count`` declares an integer ``n`` and answers a text instead."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        count = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
        tool = types.Tool(name="count", input_schema={"type": "object"}, output_schema=count)
        return types.ListToolsResult(tools=[tool])

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return types.CallToolResult(content=[], structured_content={"n": "many"})

    return Server("off-schema", on_list_tools=list_tools, on_call_tool=call_tool)


async def test_a_call_the_sdk_fails_is_told_as_a_sentence_without_its_class() -> None:
    """The SDK refuses a result that does not fit the tool's output schema (a RuntimeError):
    the model is told so in a sentence that names the server, the tool and what to do. (It
    read "The tool count failed: RuntimeError: Invalid structured content ...".)"""
    async with MCPSession(off_schema_server()) as session:
        [result] = await results(ToolSet(session), call("count"))
    assert result.is_error
    assert str(result) == (
        "The MCP client could not complete the call of the tool count of the MCP server "
        "'off-schema' (in-process): Invalid structured content returned by tool count: 'many' "
        "is not of type 'integer'. Call it again, or do without it; if it fails again, the "
        "server's operator should check its answer to this call."
    )


class BreakingTransport:
    """A served ``divide`` over memory streams, a transport whose pipe breaks (raises) once
    ``breaking`` is set; ``ended`` is set as it has unwound."""

    def __init__(self) -> None:
        self.breaking, self.ended = asyncio.Event(), asyncio.Event()
        self._running: contextlib.AbstractAsyncContextManager[Any] | None = None

    def __repr__(self) -> str:
        return "<a breaking transport>"

    async def __aenter__(self) -> Any:
        self._running = self._run()
        return await self._running.__aenter__()

    async def __aexit__(self, *exc: Any) -> bool | None:
        assert self._running is not None
        try:
            return await self._running.__aexit__(*exc)
        finally:
            self.ended.set()  # (the session notes the broken pipe before it next waits)

    @contextlib.asynccontextmanager
    async def _run(self) -> Any:
        import anyio

        server = mcp_server([divide])
        to_server, from_client = anyio.create_memory_object_stream[Any](10)
        to_client, from_server = anyio.create_memory_object_stream[Any](10)

        async def breaking() -> None:
            await self.breaking.wait()
            raise RuntimeError("The pipe to the server broke.")

        async with anyio.create_task_group() as group:
            options = server.create_initialization_options()
            group.start_soon(server.run, from_client, to_client, options)
            group.start_soon(breaking)
            yield from_server, to_server
            group.cancel_scope.cancel()


async def test_a_connection_that_broke_is_told_to_the_model_without_the_errors_class() -> None:
    """The connection's task fails (its transport raised): the next call's error result says
    so in a sentence, with the error's text but not its class. (It read "... broke:
    RuntimeError('The pipe to the server broke.'). ...")"""
    transport = BreakingTransport()
    async with MCPSession(transport) as session:
        [divided] = await results(ToolSet(session), call("divide", a=1, b=4))
        transport.breaking.set()
        await soon(transport.ended.wait())
        [result] = await results(ToolSet(session), call("divide", a=1, b=4))
    assert str(divided) == "0.25"
    assert result.is_error
    assert str(result) == (
        "The connection to the MCP server <a breaking transport> closed before it answered the "
        "call of its tool divide (the server stopped, or could not be reached any more: The "
        "pipe to the server broke). Open a new session once the server runs again."
    )


async def test_a_result_past_max_result_chars_is_cut_with_a_note_to_the_model() -> None:
    """A real server's result of 1,000,010 characters: the model gets the first million
    (the default) and a note; a result of a million exactly comes whole."""
    async with stdio_session() as session, MiniAgents():
        cut, whole = await results(
            ToolSet(session),
            call("big", "c1", chars=1_000_010),
            call("big", "c2", chars=1_000_000),
        )
    kept, _, note = str(cut).partition("\n")
    assert (kept, cut.is_error) == ("0" * DEFAULT_MAX_RESULT_CHARS, False)
    assert note == (
        "[The tool's result was cut here: it had 1,000,010 characters, more than the "
        "1,000,000 this MCP session passes on (max_result_chars). Ask for less, e.g. a "
        "narrower query or a part of it at a time.]"
    )
    assert str(whole) == "0" * 1_000_000


async def test_max_result_chars_counts_every_block_of_a_result() -> None:
    session = MCPSession(in_process_server, max_result_chars=25)
    async with session, MiniAgents():
        cut, whole = await results(
            ToolSet(session), call("big", "c1", chars=10, blocks=3), call("big", "c2", chars=8)
        )
    assert str(cut) == (
        "0000000000\n1111111111\n222\n[The tool's result was cut here: it had 32 characters, "
        "more than the 25 this MCP session passes on (max_result_chars). Ask for less, e.g. "
        "a narrower query or a part of it at a time.]"
    )
    assert str(whole) == "00000000"
