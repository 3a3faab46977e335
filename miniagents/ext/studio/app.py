"""``studio_app``: the studio's web app, a page of recorded runs over the store (extra ``web``).

``miniagents studio`` serves it. The page (plain HTML, CSS and JavaScript of this package,
nothing from another site: it works offline) lists the runs, shows one as a tree of agent
calls, live while it runs, and forks a run at a call of the model, showing the two runs
side by side. Its JSON API, under ``/api``:

==========================================  ==============================================
``GET /api/runs``                           the latest runs (``?limit=``, at most 1,000)
``GET /api/runs/{run}``                     one run (``last``: the latest)
``GET /api/runs/{run}/events``              its events as SSE, from ``?after=`` (or
                                            ``Last-Event-ID``) on, live until it ends (a
                                            comment every ``keepalive`` seconds it is quiet)
``POST /api/runs/{run}/fork``               ``{"call": 3, "reply": "..."}`` (or ``prompt``,
                                            ``system``): runs the program again as a fork;
                                            202 ``{"run": the fork's id}``
``GET /api/forks/{run}``                    how a fork's program stands (its exit status and
                                            the end of its output, once ended, its secrets
                                            redacted: see below)
``GET /api/diff?left=...&right=...``        the two runs side by side (``diff_runs``; a
                                            run of more than ``max_run_events`` events is a
                                            413, and so is its fork)
==========================================  ==============================================

Its errors are JSON, ``{"error": {"code": ..., "message": ...}}``; one it did not expect (a
disk's ``OSError``, a store's bug) is a 500 ``server_error`` that names the error's class and
the reference the server's log has it under (logged once, whole), never its text; the
store's own failure (a file that is no store, say) is a 500 ``store_error`` that names the
reference its error is logged under.

A diff and a fork read runs whole (up to ``max_run_events`` events each): at most
``max_reads`` such requests read at once, and one more is a 503 (``too_many_reads``, with
``Retry-After``) to retry in a moment.

**Who asks.** The studio shows what programs did, prompts and replies included, and runs
programs again: every ``/api`` request needs the bearer token it was made with
(``Authorization: Bearer <token>``; the page has it from its address, ``/#token=...``,
which ``miniagents studio`` prints); the page and its files hold no data and are public.
It answers only requests whose ``Host`` is one of ``allowed_hosts`` (the local names by
default: a page of another site that a DNS name points at 127.0.0.1 reaches nothing, a
400 ``host_not_allowed``): it is the web apps' door
(:class:`~miniagents.ext.web.lowlevel.Door`): a POST must be JSON from its own origin,
and every response carries the security headers; the page runs under a
Content-Security-Policy that lets only its own files run and call its own origin. A fork
runs only the command its run was recorded with (never one a request
names), at most ``max_forks`` at once. The end of a fork's output (its last 8,000
characters) is shown with the obvious secrets redacted: the value of each variable of the
program's environment whose name ends in ``KEY``, ``TOKEN``, ``SECRET`` or ``PASSWORD``
(``OPENAI_API_KEY``, ...), of 8 characters or more, is shown as ``[redacted: its name]``
(a shorter one would hide ordinary words). Any other secret a program prints is shown as
it is: a program should not print its secrets.

**Mounted.** The app may be served under a prefix of another Starlette app
(``Mount("/studio", app=studio_app(...))``): the page (``/studio/``, its token then in
``/studio/#token=...``) names its files and the API relative to its own address. Starlette
runs no lifespan of a mounted app, and the studio's stops the forks still running as its
server stops: the host app's lifespan enters :func:`studio_lifespan` for it. Until its
lifespan has started, the studio refuses forks (a 503, ``no_lifespan``, naming
:func:`studio_lifespan`); the rest of its API needs no lifespan and answers as ever. Once
its shutdown has begun (its server stops, or its lifespan ends), a fork is a 503 too
(``shutting_down``): its program would be stopped at once, or not at all. One studio served
by several servers at once (its lifespan entered by each) stops its forks, and refuses
more, as the last of them stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from miniagents.arguments import check_count, check_seconds
from miniagents.ext.errors import MissingExtraError, WebConfigurationError

try:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Route
except ImportError as _missing:  # (the web extra is installed in the tests)
    raise MissingExtraError(
        "The studio's page needs Starlette and uvicorn. Install them with: "
        'pip install "miniagents[web]"'
    ) from _missing

from miniagents.ext.studio.diff import diff_runs
from miniagents.ext.studio.errors import (
    StudioConfigurationError,
    StudioDamagedRunError,
    StudioError,
    StudioForkError,
    StudioNotFoundError,
    StudioRunTooLargeError,
    StudioStoreError,
)
from miniagents.ext.studio.fork import (
    Fork,
    ForkResult,
    afork,
    checked_environment,
    plan_fork,
    program_environment,
)
from miniagents.ext.studio.store import MAX_RUN_EVENTS, RunStore
from miniagents.ext.studio.tree import RunTree
from miniagents.ext.told_errors import told_error, told_reference
from miniagents.ext.web.auth import MIN_TOKEN_LENGTH as MIN_TOKEN_LENGTH
from miniagents.ext.web.auth import BearerTokenAuth
from miniagents.ext.web.lowlevel import Door, amethod_not_allowed, aread_bounded
from miniagents.ext.web.serving import server_stop
from miniagents.ext.web.settings import DEFAULT_BODY_SECONDS, LOCAL_HOSTS, WebSettings

__all__ = ["MIN_TOKEN_LENGTH", "PAGE_POLICY", "check_token", "studio_app", "studio_lifespan"]

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""The page's Content-Security-Policy: its own script and style files, its own origin."""

_PAGE = Path(__file__).resolve().parent / "page"
_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/studio.js": ("studio.js", "text/javascript; charset=utf-8"),
    "/studio.css": ("studio.css", "text/css; charset=utf-8"),
}
_POLL = 0.1  # seconds between two looks at the store for a live run's new events
_FAILURES_EVERY = 60.0  # seconds: at most one line of a watch's failures in a row as often
_MAX_BODY = 256 * 1024
_KEPT_FORKS = 100
_OUTPUT_SHOWN = 8_000  # characters: the end of a fork's output
_SECRET_ENDINGS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
_SHORTEST_SECRET = 8  # characters: a shorter value is not redacted (it may be a word)
_logger = logging.getLogger("miniagents.ext.studio")


def studio_app(
    store: RunStore | str | os.PathLike[str],
    *,
    token: str,
    allowed_hosts: Sequence[str] = LOCAL_HOSTS,
    environment: Mapping[str, str] | None = None,
    max_forks: int = 2,
    max_followers: int = 64,
    max_reads: int = 4,
    fork_timeout: float | None = 600.0,
    max_run_events: int = MAX_RUN_EVENTS,
    keepalive: float = 15.0,
    body_seconds: float = DEFAULT_BODY_SECONDS,
) -> Starlette:
    """The studio's app over ``store`` (see the module).

    Args:
        store: The store of recorded runs, or its file.
        token: The bearer token every ``/api`` request must carry (at least
            :data:`MIN_TOKEN_LENGTH` characters, e.g. ``secrets.token_urlsafe()``).
        allowed_hosts: The ``Host`` names it answers, whatever the port (``"studio.internal"``,
            ``"*.example.com"`` for its subdomains; an IPv6 address in brackets).
        environment: Variables a fork's program gets over the studio's own environment
            (e.g. a model server's address).
        max_forks: The most fork programs running at once (one more is a 429).
        max_followers: The most event streams open at once (one more is a 503).
        max_reads: The most diffs and forks reading their runs at once (one more is a 503,
            to retry).
        fork_timeout: Seconds a fork's program may run before it is killed (``None``: no
            limit).
        max_run_events: The most events of a run one diff or fork reads (a run of more is a
            413).
        keepalive: Seconds an event stream may be quiet before it sends a comment (so that
            a client that left is noticed, under a server that says so only when sent to).
        body_seconds: Seconds a fork's body has to arrive, all of it, from the request's
            arrival (a 408, ``body_too_slow``, past them).

    Raises:
        StudioConfigurationError: for a token that is short, has spaces or is not ASCII, no
            allowed host or one that is no host name, a limit below 1, a ``keepalive``,
            ``fork_timeout`` or ``body_seconds`` that is not a positive, finite number of
            seconds, an ``environment`` that is not a mapping of ``str`` to ``str``, or a
            store that is a directory.
    """
    check_token(token)
    if not allowed_hosts:
        raise StudioConfigurationError(
            "allowed_hosts is empty: nobody could reach the studio; leave it out for this "
            "machine's own names, or list the names it is reached by."
        )
    _check_limits(
        {"keepalive": keepalive, "fork_timeout": fork_timeout},
        {
            "max_forks": max_forks,
            "max_followers": max_followers,
            "max_reads": max_reads,
            "max_run_events": max_run_events,
        },
    )
    runs = store if isinstance(store, RunStore) else RunStore(store)
    forks = _Forks(runs, max_forks, checked_environment(environment, "studio_app"), fork_timeout)
    try:
        studio = _Studio(
            runs,
            token,
            allowed_hosts,
            forks,
            _Bound(max_followers),
            _Bound(max_reads),
            max_run_events,
            float(keepalive),
            body_seconds,
        )
    except WebConfigurationError as error:  # (a host that is no host name, say: "http://...")
        raise _studios(error) from error

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        studio.forks.enter()  # (forks may start now)
        try:
            yield
        finally:  # (the host's lifespan failing after it, too: no fork outlives the last)
            await studio.forks.aleave()

    app = Starlette(
        routes=_routes(studio),
        middleware=studio.door.middleware(),
        exception_handlers={405: amethod_not_allowed},  # (JSON, as its other refusals)
        lifespan=lifespan,
    )
    app.state.store = runs
    app.state.forks = studio.forks
    return app


def studio_lifespan(app: Starlette) -> contextlib.AbstractAsyncContextManager[object]:
    """The lifespan of the studio ``app``, for the app it is mounted in to enter in its own.

    Starlette runs the lifespan of the app it serves, not of the apps mounted in it: a
    studio mounted (``Mount("/studio", app=studio)``) would leave the programs of its forks
    running as its server stops. Entered in the host app's lifespan (``async with
    studio_lifespan(studio): yield``), it stops them as the host app stops (their runs end
    as lost). Until it is entered, the studio refuses forks (a 503, ``no_lifespan``).
    Entered more than once at a time (by two servers of the studio), the last to end stops
    the forks.

    Args:
        app: An app :func:`studio_app` made.

    Raises:
        StudioConfigurationError: for an app that :func:`studio_app` did not make.
    """
    if not isinstance(app, Starlette) or not isinstance(getattr(app.state, "forks", None), _Forks):
        raise StudioConfigurationError(
            f"studio_lifespan takes the app that studio_app made, not {app!r}: give it the "
            "studio you mount (studio = studio_app(...); Mount('/studio', app=studio))."
        )
    return app.router.lifespan_context(app)


def check_token(token: str) -> None:
    """Refuse a token that is no text without spaces, is too short, or is not ASCII.

    A short one is guessed; one that is not ASCII is never matched (a header is read as
    Latin-1 bytes: see :class:`~miniagents.ext.web.auth.BearerTokenAuth`). :func:`studio_app`
    checks its ``token`` with it, and ``miniagents studio`` its ``--token``.

    Raises:
        StudioConfigurationError: for such a token, its ``parameter`` ``"token"``.
    """
    if not isinstance(token, str) or not token or any(char.isspace() for char in token):
        raise _token_refused(
            "The studio needs a bearer token, a text without spaces, not "
            f"{_shown_token(token)}: it shows the prompts and replies of your runs, and runs "
            "your programs again. Give one of at least "
            f"{MIN_TOKEN_LENGTH} characters, e.g. token=secrets.token_urlsafe()."
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise _token_refused(
            f"The studio's token is too short (the token has {len(token)} characters, too few "
            f"to keep guessers out): give one of at least {MIN_TOKEN_LENGTH} (e.g. "
            "secrets.token_urlsafe()): whoever has it reads your runs and runs your programs "
            "again."
        )
    if not token.isascii():
        raise _token_refused(
            "The studio's token is not ASCII: a request's header is read as Latin-1 bytes and "
            "a browser sends no other, so it could never be matched. Give one of ASCII "
            "characters only (e.g. secrets.token_urlsafe())."
        )


def _shown_token(token: object) -> str:
    """What a refused token was, without its text (a token is a secret, even a wrong one)."""
    if isinstance(token, str):
        return "an empty text" if not token else "a text with spaces"
    return "None" if token is None else f"a value of type {type(token).__name__}"


def _token_refused(message: str) -> StudioConfigurationError:
    """The error of a token the studio cannot use, naming ``token`` (its option, ``--token``)."""
    error = StudioConfigurationError(message)
    error.parameter = "token"
    return error


def _check_limits(seconds: Mapping[str, float | None], counts: Mapping[str, int]) -> None:
    """Refuse a limit in ``seconds`` or ``counts`` the studio cannot keep to, by its name.

    A ``fork_timeout`` of ``None`` is no limit; every other one is checked.
    """
    for name, given in seconds.items():
        if given is not None or name != "fork_timeout":
            check_seconds(given, name, owner="studio_app", error=StudioConfigurationError)
    for name, count in counts.items():
        check_count(count, name, owner="studio_app", error=StudioConfigurationError)


def _routes(studio: _Studio) -> list[Route]:
    """The page's files, public, and the API's routes behind the token (see the module)."""
    return [
        *(Route(path, _file_server(*served)) for path, served in _FILES.items()),
        Route("/api/runs", studio.api(studio.list_runs)),
        Route("/api/runs/{run}", studio.api(studio.one_run)),
        Route("/api/runs/{run}/events", studio.api(studio.events)),
        Route("/api/runs/{run}/fork", studio.api(studio.fork), methods=["POST"]),
        Route("/api/forks/{run}", studio.api(studio.fork_state)),
        Route("/api/diff", studio.api(studio.diff)),
    ]


def _studios(refused: WebConfigurationError) -> StudioConfigurationError:
    """The studio's error for a setting its door refused, naming the same ``parameter``.

    A command line names its own option for it.
    """
    error = StudioConfigurationError(str(refused))
    error.parameter = refused.parameter
    return error


def _file_server(name: str, media_type: str) -> _Handler:
    """The handler of one file of the page, ``name`` of :data:`_PAGE`, public.

    Each route has its own file (not looked up by the request's path, which under a
    ``Mount`` holds the prefix as well).
    """

    async def serve(_request: Request) -> Response:
        headers = {"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"}
        return FileResponse(_PAGE / name, media_type=media_type, headers=headers)

    return serve


_Handler = Callable[[Request], Awaitable[Response]]
_Read = TypeVar("_Read")


class _Studio:
    """The API's handlers over the store, behind the door (see the module)."""

    def __init__(
        self,
        runs: RunStore,
        token: str,
        allowed_hosts: Sequence[str],
        forks: _Forks,
        followers: _Bound,
        reads: _Bound,
        max_run_events: int,
        keepalive: float,
        body_seconds: float,
    ) -> None:
        self.runs = runs
        self.max_run_events = max_run_events
        self.keepalive = keepalive
        hosts = [host.lower() for host in allowed_hosts]
        settings = WebSettings(allowed_hosts=hosts, body_seconds=body_seconds)
        self.door = Door(BearerTokenAuth({token: "studio"}), settings, "the studio")
        self.forks = forks
        self.followers = followers
        self.watches = _Watches(runs)
        self.reads = reads

    def api(self, handler: _Handler) -> _Handler:
        """``handler`` for the token's holder alone, its errors as the studio's JSON errors.

        The studio's own errors are answered by kind (a 404, a 422, ...; the store's
        failure a 500 ``store_error`` naming the reference the error is logged under); any
        other error (a disk's ``OSError``, a store's bug) is a 500 ``server_error`` naming
        its class and a reference. Either is logged once, whole, under its reference
        (:func:`~miniagents.ext.told_errors.told_error`), and the client is told the
        reference in every server's words
        (:func:`~miniagents.ext.told_errors.told_reference`): never the error's text, which
        may name the server's paths. An ``HTTPException`` goes on to the app's
        handlers, and a client that left (``ClientDisconnect``) is answered nothing, its
        leaving logged at debug only (no error: a client may leave at any time).
        """

        async def guarded(request: Request) -> Response:
            refused = self.door.owner(request)
            if isinstance(refused, Response):
                return refused
            try:
                return await handler(request)
            except StudioNotFoundError as error:
                return _error(404, "not_found", str(error))
            except StudioForkError as error:
                return _error(422, "cannot_fork", str(error))
            except StudioDamagedRunError as error:
                return _error(422, "damaged_run", str(error))
            except StudioRunTooLargeError as error:
                return _error(413, "run_too_large", str(error))
            except StudioConfigurationError as error:  # (an argument the request gave)
                return _error(400, "bad_request", str(error))
            except StudioError as error:  # (the store's own: its path and cause are logged)
                told = told_error(
                    error,
                    _logger,
                    f"Answering {request.method} {request.url.path}",
                    error_texts=False,
                )
                said = told_reference(told.reference, _OPERATOR)
                return _error(500, "store_error", f"{_STORE_FAILED} {said} {_STORE_RETRY}")
            except ClientDisconnect:  # (nobody to answer, and nothing went wrong)
                _logger.debug(
                    "The client of %s %s left before its request was read.",
                    request.method,
                    request.url.path,
                )
                return Response(status_code=400)  # (sent nowhere: its connection is closed)
            except HTTPException:
                raise
            except Exception as error:  # (a disk's, a bug's: by class and reference)
                path = request.url.path
                told = told_error(
                    error,
                    _logger,
                    f"Answering {request.method} {path}",
                    error_texts=False,
                    who=f"The studio's answer to {request.method} {path}",
                    operator=_OPERATOR,
                )
                return _error(500, "server_error", f"{told.text} Retry once it is fixed.")

        return guarded

    async def list_runs(self, request: Request) -> Response:
        """``GET /api/runs``."""
        limit = _whole(request.query_params.get("limit"), 200)
        if limit is None or not 1 <= limit <= 1_000:
            return _error(400, "bad_limit", "limit must be a whole number from 1 to 1,000.")
        found = await asyncio.to_thread(self.runs.runs, limit)
        runs = [run.as_json() for run in found]
        return JSONResponse({"store": str(self.runs.path), "runs": runs})

    async def one_run(self, request: Request) -> Response:
        """``GET /api/runs/{run}``."""
        run = await asyncio.to_thread(self.runs.run, request.path_params["run"])
        return JSONResponse(run.as_json())

    async def events(self, request: Request) -> Response:
        """``GET /api/runs/{run}/events``: SSE, live."""
        run_id = request.path_params["run"]
        given = request.query_params.get("after") or request.headers.get("last-event-id")
        after = _whole(given, 0)
        if after is None:
            return _error(
                400,
                "bad_position",
                "after (or Last-Event-ID) must be a whole number (at most 18 digits).",
            )
        if not self.forks.starting(run_id):
            run_id = (await asyncio.to_thread(self.runs.run, run_id)).id  # (404 if unknown)
        if self.followers.full():
            return _error(503, "too_many_followers", _TOO_MANY_FOLLOWERS)
        stop = server_stop()  # (its server's, known in this request's task)
        return _EventStream(
            _followed(
                self.runs,
                self.forks,
                run_id,
                after,
                self.followers,
                self.watches,
                self.keepalive,
                stop,
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def fork(self, request: Request) -> Response:
        """``POST /api/runs/{run}/fork``: 202, the fork's program started."""
        try:
            body = await aread_bounded(request, _MAX_BODY)
        except HTTPException as late:
            return _error(late.status_code, "body_too_slow", late.detail)
        if body is None:
            return _error(413, "body_too_large", f"A fork's body is at most {_MAX_BODY:,} bytes.")
        try:
            asked = json.loads(body)
        except (ValueError, RecursionError):  # (RecursionError: nested past the parser's depth)
            return _error(
                400, "invalid_json", 'The body is not JSON; send {"call": 3, "reply": "..."}.'
            )
        if not isinstance(asked, dict) or type(asked.get("call")) is not int or asked["call"] < 1:
            return _error(
                422, "bad_fork", 'Name the call to edit by its number, from 1: {"call": 3, ...}.'
            )
        edits = {name: asked.get(name) for name in ("reply", "prompt", "system")}
        if any(edit is not None and not isinstance(edit, str) for edit in edits.values()):
            return _error(422, "bad_fork", "reply, prompt and system are texts.")
        refused = self._not_forking()
        if refused is not None:
            return refused
        if self.forks.full():  # (before the run is read whole: it would start nothing)
            return self._too_many_forks()
        planned = await self.read(
            lambda: plan_fork(
                self.runs,
                request.path_params["run"],
                asked["call"],
                **edits,
                max_events=self.max_run_events,
            )
        )
        if isinstance(planned, Response):
            return planned
        refused = self._not_forking()  # (the shutdown may have begun as the run was read)
        if refused is not None:
            return refused
        if not self.forks.start(planned):  # (full since: another fork started meanwhile)
            return self._too_many_forks()
        return JSONResponse({"run": planned.child, "forked_from": planned.run}, status_code=202)

    def _not_forking(self) -> JSONResponse | None:
        """A 503 if no fork may start now, else ``None``.

        No fork may start before the studio's lifespan has started (``no_lifespan``:
        nothing would stop its program as the server stops), nor once the shutdown has begun
        (``shutting_down``: its server stops, or the lifespan ends and stops the forks).
        Checked as the request arrives and again just before the fork starts, with no wait
        between (the shutdown may begin while its run is read).
        """
        if not self.forks.serving:
            return _error(503, "no_lifespan", _NO_LIFESPAN)
        stop = server_stop()  # (its server's, known in this request's task)
        if self.forks.stopping or (stop is not None and stop.is_set()):
            return _error(503, "shutting_down", _SHUTTING_DOWN)
        return None

    def _too_many_forks(self) -> JSONResponse:
        return _error(
            429, "too_many_forks", f"{self.forks.limit} forks run already; wait for one to end."
        )

    async def read(self, reading: Callable[[], _Read]) -> _Read | Response:
        """``reading()`` in a thread, or a 503 if ``max_reads`` reads run already.

        Its place is given back as the thread ends (a request given up does not end it).
        """
        if not self.reads.take():
            return _error(
                503,
                "too_many_reads",
                f"The studio reads as many runs at once as it may ({self.reads.limit}); retry in "
                "a moment.",
                headers={"Retry-After": "1"},
            )
        thread = asyncio.ensure_future(asyncio.to_thread(reading))
        thread.add_done_callback(self._read_ended)
        return await asyncio.shield(thread)

    def _read_ended(self, thread: asyncio.Future[Any]) -> None:
        self.reads.give_back()
        if not thread.cancelled():
            thread.exception()  # (retrieved: the request may have been given up)

    async def fork_state(self, request: Request) -> Response:
        """``GET /api/forks/{run}``."""
        state = self.forks.state(request.path_params["run"])
        if state is None:
            return _error(404, "not_found", "This studio started no such fork.")
        return JSONResponse(state)

    async def diff(self, request: Request) -> Response:
        """``GET /api/diff?left=...&right=...``."""
        left, right = request.query_params.get("left"), request.query_params.get("right")
        if not left or not right:
            return _error(400, "bad_diff", "Give the two runs: /api/diff?left=RUN&right=RUN.")
        trees = await self.read(
            lambda: (
                RunTree.of(self.runs, left, self.max_run_events),
                RunTree.of(self.runs, right, self.max_run_events),
            )
        )
        if isinstance(trees, Response):
            return trees
        rows = diff_runs(*trees)
        return JSONResponse(
            {
                "left": trees[0].run.as_json(),
                "right": trees[1].run.as_json(),
                "rows": [row.as_json(trees[0].ended, trees[1].ended) for row in rows],
            }
        )


def _error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _whole(given: str | None, default: int) -> int | None:
    """``given`` as a whole number below 10**18 (what SQLite holds), ``default`` if absent."""
    if given is None or given == "":
        return default
    # (str.isdigit alone takes "²", which int() refuses: ASCII digits only, at most 18)
    return int(given) if given.isascii() and given.isdigit() and len(given) <= 18 else None


_NO_LIFESPAN = (
    "The studio's lifespan has not started, so a fork's program would run on after its "
    "server stops: the app the studio is mounted in must enter studio_lifespan(studio) in "
    "its own lifespan (async with studio_lifespan(studio): yield). Forks are refused until "
    "it does."
)
_SHUTTING_DOWN = (
    "The studio is shutting down: a fork started now would be stopped at once. Fork again "
    "once the studio has started again."
)
_TOO_MANY_FOLLOWERS = "Too many event streams are open; close some pages of the studio."
_OPERATOR = "the studio's operator"
_STORE_FAILED = "The studio could not read its store of recorded runs."
_STORE_RETRY = "Retry once the store is fixed."


class _Bound:
    """A count of things open, at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def full(self) -> bool:
        return self.open >= self.limit

    def take(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def give_back(self) -> None:
        self.open -= 1


class _EventStream(StreamingResponse):
    """A stream that closes its events as it ends, however it ends.

    (A client that left: its place among the followers is given back then, not when the
    generator is collected.)
    """

    def __init__(self, events: AsyncGenerator[str, None], **options: Any) -> None:
        super().__init__(events, **options)
        self._events = events

    async def stream_response(self, send: Callable[..., Awaitable[None]]) -> None:
        try:
            await super().stream_response(send)
        finally:
            await self._events.aclose()


async def _followed(
    runs: RunStore,
    forks: _Forks,
    run_id: str,
    after: int,
    followers: _Bound,
    watches: _Watches,
    keepalive: float = 15.0,
    stop: asyncio.Event | None = None,
) -> AsyncGenerator[str, None]:
    """The run's events after ``after`` as SSE, then each new one, until the run has ended.

    Each SSE message is a chunk of events as the store keeps it, ``{"first": n, "events":
    [...]}`` (the events as :mod:`~miniagents.ext.studio.events` writes them, numbered from
    ``first``), its id the number of its last event. A fork's run that has not started yet
    is waited for (its program is starting); one whose program ended without starting it
    ends the stream with an ``error`` event, and so do a chunk that cannot be read
    (damaged), a read that fails otherwise (a disk's error, a store's bug: told by its class
    and the reference it is logged under, once) and a stream past the most followers
    (counted while it runs: one its client left before it began takes no place). A comment
    (``: keepalive``) is sent each ``keepalive`` seconds nothing else was: a client that
    left is noticed then. Once ``stop`` is set (the studio's server stops:
    :func:`~miniagents.ext.web.serving.server_stop`), the stream ends at its next wait,
    whole, rather than hold the server's shutdown until it is cut: the page follows again
    from its last event (the studio started again, or failing).

    Caught up with a live run, it waits for the run's one watch (``watches``, shared by its
    followers) to see it change, rather than look at the store itself.
    """
    if not followers.take():
        yield f"event: error\ndata: {json.dumps({'message': _TOO_MANY_FOLLOWERS})}\n\n"
        return
    clock = asyncio.get_running_loop().time
    sent = clock()
    watch = watches.follow(run_id)
    try:
        while True:
            if clock() - sent >= keepalive:
                yield ": keepalive\n\n"
                sent = clock()
            changed = watch.changed  # (taken before the look: a change after it sets it)
            found = await asyncio.to_thread(runs.chunks, run_id, after)
            if found:
                for first, count, data in found:
                    after = first + count - 1
                    yield f'id: {after}\ndata: {{"first":{first},"events":{data}}}\n\n'
                watch.seen(after)
                sent = clock()
                continue
            try:
                run = await asyncio.to_thread(runs.run, run_id)
            except StudioNotFoundError:
                if forks.starting(run_id):
                    if await _stopped_within(_POLL, stop):
                        return
                    continue
                state = forks.state(run_id)
                message = (
                    {"message": f"The run {run_id} is no longer in the store (deleted)."}
                    if state is None
                    else {"message": "The fork's program ended before its run started.", **state}
                )
                yield f"event: error\ndata: {json.dumps(message)}\n\n"
                return
            if run.status != "running":
                # (what it wrote as it closed, after the look above, comes before its end)
                for first, count, data in await asyncio.to_thread(runs.chunks, run_id, after):
                    after = first + count - 1
                    yield f'id: {after}\ndata: {{"first":{first},"events":{data}}}\n\n'
                yield f"event: end\ndata: {json.dumps(run.as_json())}\n\n"
                return
            watch.seen(after)
            watch.look_on()
            if await _woken(changed, stop, keepalive - (clock() - sent)):
                return
    except StudioStoreError as error:  # (a damaged chunk: said, not a cut stream)
        yield f"event: error\ndata: {json.dumps({'message': _told_damage(run_id, error)})}\n\n"
    except Exception as error:  # (the store's own failure, a disk's: said, not a cut stream)
        yield f"event: error\ndata: {json.dumps({'message': _told_failure(run_id, error)})}\n\n"
    finally:
        watches.leave(run_id)
        followers.give_back()


async def _woken(changed: asyncio.Event, stop: asyncio.Event | None, seconds: float) -> bool:
    """Wait until ``changed`` or ``stop`` is set, at most ``seconds``; whether ``stop`` is."""
    waits = [asyncio.ensure_future(changed.wait())]
    if stop is not None:
        waits.append(asyncio.ensure_future(stop.wait()))
    try:
        await asyncio.wait(waits, timeout=max(seconds, 0.0), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    return stop is not None and stop.is_set()


class _Watch:
    """One live run's look at the store, each :data:`_POLL` seconds, for all its followers.

    ``changed`` is set (and replaced by a new event) as the run has new events, has ended,
    or is gone: a follower that took it before its own look at the store, and found
    nothing new, waits for it. A follower that found new events says so (:meth:`seen`):
    another one that looked just before they were written wakes up too.
    """

    def __init__(self, runs: RunStore, run_id: str, failures: _WatchFailures | None = None) -> None:
        self.runs = runs
        self.run_id = run_id
        self.changed = asyncio.Event()
        self.followers = 0
        self.last = 0  # (the number of the last event known)
        self.task: asyncio.Task[None] | None = None
        self.failures = _WatchFailures() if failures is None else failures
        """The log of the store's failures, shared by the studio's watches of every run."""

    def seen(self, last: int) -> None:
        """The run's events are known up to ``last``: a change, if it is new."""
        if last > self.last:
            self.last = last
            self._wake_followers()

    def look_on(self) -> None:
        """Look at the store until the run ends, unless it does already (a follower waits)."""
        if self.task is None or self.task.done():  # (its first wait, or after the run ended)
            self.task = asyncio.get_running_loop().create_task(
                self._alook(), name=f"miniagents-studio-watch:{self.run_id}"
            )

    def _wake_followers(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def _alook(self) -> None:
        """Look each :data:`_POLL` seconds, until the run ends or is gone (or the store fails).

        A failure that is no :class:`StudioError` (a store's bug, a disk's) ends the watch as
        one: its followers, woken, look themselves, and the next of them to wait starts a new
        watch (the task never ends with an error nobody reads). A store that fails now and
        then fails each new watch, each :data:`_POLL` seconds, while the followers' own
        looks read: the failures of the watches of every run are logged together, bounded
        (:class:`_WatchFailures`). They are logged by no reference,
        as no client is told of them: a follower's stream goes on, and a follower whose own
        look fails too is told that failure by the reference the log has it under
        (:func:`_told_failure`).
        """
        while True:
            await asyncio.sleep(_POLL)
            try:
                found = await asyncio.to_thread(self.runs.chunks, self.run_id, self.last, 1)
                run = None if found else await asyncio.to_thread(self.runs.run, self.run_id)
            except StudioError:  # (its followers look themselves, and say it)
                self._wake_followers()
                return
            except Exception as error:  # (the store's own failure: logged, told by none)
                self.failures.failed(self.run_id, error)
                self._wake_followers()  # (each looks itself, and a new watch starts)
                return
            self.failures.read_again(self.run_id)
            if run is None:
                first, count, _ = found[-1]
                self.seen(first + count - 1)
                continue
            if run.status != "running":
                self._wake_followers()
                return

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


class _WatchFailures:
    """The log of the store's failures met by the watches, of every run: a bounded number of lines.

    A store that fails fails the watch of each live run followed, and each new watch: a
    thousand runs followed in an hour would otherwise log a thousand failures whole. The
    first failure of a row (since the store last read) is logged whole; any other line of a
    failure comes at most each :data:`_FAILURES_EVERY` seconds, whatever its run, naming how
    many failed since the last line; a row whose failure was logged ends with one line as a
    watch reads the store again. So at most two lines each :data:`_FAILURES_EVERY` seconds,
    however many runs are followed, however often the store fails and reads again.
    """

    def __init__(self) -> None:
        self.in_row = 0  # (the watches' failures in a row, since the last look that read)
        self.unlogged = 0  # (the failures of which no line has been logged)
        self.logged_at: float | None = None  # (the loop's time of the last line of one)
        self.told = False  # (whether a line of the row's failures has been logged)

    def failed(self, run_id: str, error: Exception) -> None:
        """The watch of ``run_id`` failed with ``error``: logged if its time has come."""
        now = asyncio.get_running_loop().time()
        self.in_row += 1
        if self.logged_at is not None and now - self.logged_at < _FAILURES_EVERY:
            self.unlogged += 1
            return
        if self.in_row == 1:
            _logger.error(
                "The studio's watch of the run %s failed with %s; its followers look again.",
                run_id,
                type(error).__name__,
                exc_info=error,
            )
        else:
            _logger.error(
                "The studio's watch of the run %s failed again with %s (the watches' failures "
                "since the last line: %d); its followers look again.",
                run_id,
                type(error).__name__,
                self.unlogged + 1,
            )
        self.unlogged = 0
        self.logged_at = now
        self.told = True

    def read_again(self, run_id: str) -> None:
        """The watch of ``run_id`` read the store: one line if the row's failures were told."""
        if self.told:
            _logger.warning(
                "The studio's watch of the run %s reads the store again (failures in a row "
                "before: %d).",
                run_id,
                self.in_row,
            )
        self.in_row = 0
        self.told = False


class _Watches:
    """The watches of the live runs followed, by run (see :class:`_Watch`)."""

    def __init__(self, runs: RunStore) -> None:
        self.runs = runs
        self.watches: dict[str, _Watch] = {}
        self.failures = _WatchFailures()  # (of every run's watch: one bound for them all)

    def follow(self, run_id: str) -> _Watch:
        """The watch of ``run_id``, with one more follower (:meth:`leave` as it ends)."""
        watch = self.watches.get(run_id)
        if watch is None:
            watch = self.watches[run_id] = _Watch(self.runs, run_id, self.failures)
        watch.followers += 1
        return watch

    def leave(self, run_id: str) -> None:
        """One follower of ``run_id`` less; its watch stops with its last."""
        watch = self.watches[run_id]
        watch.followers -= 1
        if not watch.followers:
            watch.stop()
            del self.watches[run_id]


async def _stopped_within(seconds: float, stop: asyncio.Event | None) -> bool:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile; whether it is set."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


def _told_damage(run_id: str, error: StudioStoreError) -> str:
    """What a follower is told of a damaged chunk: by a reference, the error logged whole.

    The error's text names the store's file and what failed to parse it: the log has it
    (an ``ERROR`` with its traceback, once, as :func:`_told_failure` logs), the client only
    the run and the reference, in the words every server's error says it with.
    """
    told = told_error(
        error, _logger, f"Following the events of the run {run_id}", error_texts=False
    )
    return (
        f"A chunk of the run {run_id}'s events cannot be read: the store is damaged. "
        f"{told_reference(told.reference, _OPERATOR)}"
    )


def _told_failure(run_id: str, error: Exception) -> str:
    """What a follower is told of a read that failed otherwise: by class and reference.

    An ``OSError`` of the disk, a record the store cannot decode, a bug of a store: the
    error is logged whole once (an ``ERROR`` with its traceback, under the reference), and
    the client is told what failed, the reference, and to follow the run again once the
    studio's operator has fixed it (the page, reloaded, follows it from its start).
    """
    told = told_error(
        error,
        _logger,
        f"Following the events of the run {run_id}",
        error_texts=False,
        who=f"Reading the events of the run {run_id}",
        operator=_OPERATOR,
    )
    return f"{told.text} Follow the run again (reload the page) once it is fixed."


@dataclass
class _ForkState:
    task: asyncio.Task[ForkResult]
    secrets: re.Pattern[str] | None
    names: Mapping[str, str]
    result: ForkResult | None = None
    error: str | None = None
    settled: bool = False  # (how it ended is kept: ``result`` or ``error``)

    def shown_output(self, result: ForkResult) -> str:
        """The end of the output, its secrets redacted (before it is cut: none is half left).

        An output that :func:`afork` cut (its beginning left out) may begin with the end of
        a secret, which no longer matches: its first characters, one fewer than the longest
        secret's, are left out too (a whole secret that begins there is redacted whole).
        """
        output = result.output
        if self.secrets is None:
            return output[-_OUTPUT_SHOWN:]
        head = max(map(len, self.names)) - 1 if result.cut else 0
        pieces: list[str] = []
        at = 0  # (the end of the last secret found)
        for found in self.secrets.finditer(output):
            pieces.append(output[max(at, head) : found.start()])
            if found.end() > head:
                pieces.append(f"[redacted: {self.names[found[0]]}]")
            at = found.end()
        pieces.append(output[max(at, head) :])
        return "".join(pieces)[-_OUTPUT_SHOWN:]


def _secrets_of(environment: Mapping[str, str]) -> tuple[re.Pattern[str] | None, dict[str, str]]:
    """The secrets of a program's environment: a pattern of their values, and their names.

    A secret is the value of a variable whose name ends in one of :data:`_SECRET_ENDINGS`,
    of at least :data:`_SHORTEST_SECRET` characters; the longest first (one may hold another).
    """
    names = {
        value: name
        for name, value in sorted(environment.items())
        if name.upper().endswith(_SECRET_ENDINGS) and len(value) >= _SHORTEST_SECRET
    }
    if not names:
        return None, names
    values = sorted(names, key=len, reverse=True)
    return re.compile("|".join(re.escape(value) for value in values)), names


class _Forks:
    """The fork programs this studio started: at most ``limit`` running, the last 100 kept.

    The running ones are kept whatever their age: the oldest ended ones make room.
    """

    def __init__(
        self, runs: RunStore, limit: int, environment: dict[str, str], timeout: float | None
    ) -> None:
        self.runs = runs
        self.limit = limit
        self.environment = environment
        self.timeout = timeout
        self.states: OrderedDict[str, _ForkState] = OrderedDict()
        self.serving = False  # (the studio's lifespan has started: its end stops the forks)
        self.lifespans = 0  # (its lifespans running: one per server serving it)
        self.stopping = False  # (the last one's end has begun: no fork starts any more)

    def running(self) -> int:
        return sum(not state.task.done() for state in self.states.values())

    def full(self) -> bool:
        """Whether ``limit`` fork programs run already."""
        return self.running() >= self.limit

    def start(self, planned: Fork) -> bool:
        """Run the fork's program, unless ``limit`` run already."""
        child = planned.child
        if self.full():
            return False
        task = asyncio.get_running_loop().create_task(
            afork(self.runs, planned, environment=self.environment, timeout=self.timeout),
            name=f"miniagents-studio-fork:{child}",
        )
        secrets, names = _secrets_of(program_environment(self.environment))
        state = self.states[child] = _ForkState(task, secrets, names)
        task.add_done_callback(lambda ended: self._ended(child, state, ended))
        self._trim()
        return True

    def _trim(self) -> None:
        """Keep the last :data:`_KEPT_FORKS` forks: the oldest ended ones go, the running stay.

        A running fork is kept whatever its age (its program's end is still to be shown):
        more than :data:`_KEPT_FORKS` are kept only while more than that many run (a
        ``limit`` above it).
        """
        excess = len(self.states) - _KEPT_FORKS
        if excess <= 0:
            return
        ended = [child for child, state in self.states.items() if state.task.done()]
        for child in ended[:excess]:
            del self.states[child]

    def _ended(self, child: str, state: _ForkState, task: asyncio.Task[ForkResult]) -> None:
        """Keep how the fork's program ended: its result, or its error by class and reference.

        The error's text may hold what the page must not show (the recorded command line,
        an argument of which may be a key; a path): it is logged whole, under the reference
        the page shows. Called once its task is done: by the task's callback, or first by
        :meth:`state` (the callback runs a moment after the task is done); once only.
        """
        if state.settled:
            return
        state.settled = True
        if task.cancelled():
            state.error = "cancelled"
        elif (error := task.exception()) is not None:
            state.error = told_error(
                error,
                _logger,
                f"The fork {child}",
                error_texts=False,
                who="The fork's program",
                operator=_OPERATOR,
            ).text
        else:
            state.result = task.result()

    def starting(self, child: str) -> bool:
        """Whether the fork ``child``'s program runs (its run may not be in the store yet)."""
        state = self.states.get(child)
        return state is not None and not state.task.done()

    def state(self, child: str) -> dict[str, Any] | None:
        state = self.states.get(child)
        if state is None:
            return None
        if state.task.done():  # (its callback may not have run yet: what it keeps, now)
            self._ended(child, state, state.task)
        shown: dict[str, Any] = {
            "run": child,
            "running": not state.task.done(),
            "error": state.error,
        }
        if state.result is not None:
            shown["returncode"] = state.result.returncode
            shown["output"] = state.shown_output(state.result)
        return shown

    def enter(self) -> None:
        """A lifespan of the studio has started (a server serves it): forks may start."""
        self.lifespans += 1
        self.serving, self.stopping = True, False

    async def aleave(self) -> None:
        """A lifespan of the studio ends: the last one stops the forks (:meth:`aclose`).

        The same app may be served by two servers at once, each entering its lifespan; its
        forks belong to no one server, so the first to stop leaves them to the other.
        """
        self.lifespans -= 1
        if not self.lifespans:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop the programs still running (their runs end as lost), and start no more."""
        self.stopping = True
        tasks = [state.task for state in self.states.values() if not state.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
