"""``WebSettings``: the web apps' shared settings, each checked once and read by its one name."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from miniagents import InteractionContext, Message, MiniAgent, miniagent
from miniagents.errors import WebConfigurationError
from miniagents.ext.a2a import a2a_app
from miniagents.ext.llm.offline import offline_agent
from miniagents.ext.web import NoAuthentication, WebSettings, agui_app, ai_sdk_app, web_chat_app
from miniagents.ext.web.lowlevel import Door, RunManager
from miniagents.ext.web.settings import LOCAL_HOSTS, checked_host
from tests.ext.web.serving import SSEReader, agui_input, served

PAGE = Path(__file__).resolve().parents[3] / "examples" / "web_chat" / "index.html"
FIELDS = [field.name for field in dataclasses.fields(WebSettings)]


def chat_page_app(agent: MiniAgent[..., Message], **given: object) -> Starlette:
    """``web_chat_app`` with the example's page."""
    return web_chat_app(agent, page=PAGE, **given)  # type: ignore[arg-type]


APPS: list[Callable[..., Starlette]] = [agui_app, ai_sdk_app, a2a_app, chat_page_app]


_REFUSED = [
    ("max_live_runs", 0),
    ("max_live_runs", 2.5),
    ("max_live_runs_per_principal", True),
    ("max_ended_runs", -1),
    ("max_ended_run_bytes", -1),
    ("max_ended_run_bytes", 1e6),
    ("max_streams", 0),
    ("max_streams_per_principal", 0),
    ("keep_runs_for", -1.0),
    ("keep_runs_for", math.inf),
    ("grace_period", math.nan),
    ("grace_period", -1),
    ("max_body_bytes", 0),
    ("max_body_bytes", True),
    ("max_body_bytes", 1e6),
    ("max_body_bytes", "1000"),
    ("max_body_values", 0),
    ("max_body_values", 1e4),
    ("max_id_chars", 0),
    ("max_id_chars", 2.5),
    ("max_id_chars", "256"),
    ("body_seconds", 0),
    ("body_seconds", math.inf),
    ("body_seconds", "30"),
    ("approval_edits", "yes"),
    ("allowed_origins", "https://chat.example.com"),  # (a str, not a list of them)
    ("allowed_origins", ["*"]),
    ("allowed_origins", ["https://chat.example.com/app"]),
    ("allowed_origins", ["https://user@chat.example.com"]),
    ("allowed_origins", [3]),
    ("allowed_hosts", "chat.example.com"),
    ("allowed_hosts", ["https://chat.example.com"]),
    ("allowed_hosts", ["chat.example.com:8443"]),
    ("allowed_hosts", ["chat.example.com/app"]),
    ("allowed_hosts", ["a*.example.com"]),
    ("allowed_hosts", [""]),
]


@pytest.mark.parametrize(("name", "value"), _REFUSED)
def test_a_setting_the_apps_cannot_keep_to_is_refused_naming_its_field(
    name: str, value: object
) -> None:
    with pytest.raises(WebConfigurationError) as refused:
        WebSettings(**{name: value})  # type: ignore[arg-type]
    assert refused.value.parameter == name  # (a command line names its own option for it)
    assert name in str(refused.value)
    assert repr(value) in str(refused.value) or repr(value[0]) in str(refused.value)  # type: ignore[index]


def test_the_defaults_are_the_secure_ones() -> None:
    settings = WebSettings()
    assert settings.allowed_hosts == LOCAL_HOSTS == ("localhost", "127.0.0.1", "[::1]")
    assert settings.allowed_origins == ()
    assert settings.approval_edits is False
    assert settings.grace_period is None  # (the app's own: 10 s, A2A's never)
    assert (settings.max_streams, settings.max_streams_per_principal) == (1_000, 20)
    assert settings.body_seconds == 30.0  # (a body sent a byte a minute: a 408)


def test_hosts_and_origins_are_kept_as_tuples_in_the_form_the_apps_match() -> None:
    settings = WebSettings(
        allowed_hosts=["Chat.Example.COM", "::1", "*.Example.com.", "*", "0.0.0.0"],
        allowed_origins=["https://chat.example.com/", "http://127.0.0.1:8000"],
        grace_period=math.inf,  # never
    )
    # as a browser writes a page's Origin (the apps match it as it is)
    written = WebSettings(allowed_origins=["HTTPS://Chat.Example.COM:443", "http://Front:80"])
    assert written.allowed_origins == ("https://chat.example.com", "http://front")
    assert settings.allowed_hosts == ("chat.example.com", "[::1]", "*.example.com", "*", "0.0.0.0")
    assert settings.allowed_origins == ("https://chat.example.com", "http://127.0.0.1:8000")
    assert settings == dataclasses.replace(settings)  # (checked again, the same)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_live_runs = 1  # type: ignore[misc]


def test_a_host_is_checked_and_written_as_a_url_writes_it() -> None:
    written = {"::1": "[::1]", "[::1]": "[::1]", "LocalHost.": "localhost", "0.0.0.0": "0.0.0.0"}
    assert {host: checked_host(host) for host in written} == written
    for wrong in ("http://0.0.0.0", "localhost:8000", "a b", ""):
        with pytest.raises(WebConfigurationError, match="is not a host name"):
            checked_host(wrong)


def test_each_field_is_documented_once_in_the_class_docstring() -> None:
    documented = inspect.cleandoc(WebSettings.__doc__ or "")  # (3.13 dedents it already)
    for name in FIELDS:
        assert documented.count(f"\n    {name}: ") == 1, name


_DEPRECATED = {"a2a_app": {"max_id_chars"}}
"""An app's former parameter of a setting, kept until it goes (a DeprecationWarning)."""


@pytest.mark.parametrize("app", APPS, ids=lambda app: app.__name__)
def test_no_app_repeats_a_setting_in_its_signature(app: Callable[..., Starlette]) -> None:
    made = app if app is not chat_page_app else web_chat_app
    parameters = inspect.signature(made).parameters
    deprecated = _DEPRECATED.get(made.__name__, set())  # (each warns, naming the setting)
    assert (set(parameters) - deprecated).isdisjoint(FIELDS), made.__name__
    assert parameters["settings"].kind is inspect.Parameter.KEYWORD_ONLY
    assert parameters["settings"].default == WebSettings()
    assert parameters["authentication"].default is None  # (required: refused when left out)


def test_the_run_manager_and_the_door_take_the_settings_object_not_its_fields() -> None:
    for taker in (RunManager, Door):
        parameters = set(inspect.signature(taker).parameters)
        assert "settings" in parameters
        assert parameters.isdisjoint(FIELDS), taker.__name__
    renamed = ("keep_for", "grace", "max_live", "max_live_per_owner", "edits", "max_ended")
    assert not any(hasattr(RunManager, name) for name in renamed)


@pytest.mark.parametrize("app", APPS, ids=lambda app: app.__name__)
def test_each_app_reads_the_settings_object_it_was_given(app: Callable[..., Starlette]) -> None:
    settings = WebSettings(max_live_runs=3, keep_runs_for=7, allowed_hosts=["chat.example.com"])
    made = app(offline_agent, authentication=NoAuthentication(), settings=settings)
    api = made
    if app is chat_page_app:
        (api,) = [route.app for route in made.routes if isinstance(route, Mount)]  # type: ignore[assignment]
    runs: RunManager = api.state.runs
    door: Door = api.state.door
    if app is a2a_app:  # its tasks outlive their connections unless told otherwise
        assert runs.settings == dataclasses.replace(settings, grace_period=math.inf)
        assert door.settings is settings
    else:
        assert runs.settings is settings
        assert door.settings is settings
    told = WebSettings(grace_period=5)
    a2a = a2a_app(offline_agent, authentication=NoAuthentication(), settings=told)
    assert a2a.state.runs.settings is told


async def test_the_stream_limits_are_the_run_managers_settings_as_they_stand() -> None:
    # (its stream slots kept the settings the manager was made with: replaced, as the live
    # run bounds' tests replace them, the two disagreed on max_streams)
    hold = asyncio.Event()

    @miniagent
    async def waiting(ctx: InteractionContext) -> None:
        ctx.reply("Hello")
        await hold.wait()

    app = agui_app(waiting, authentication=NoAuthentication(), settings=WebSettings(max_streams=1))
    runs: RunManager = app.state.runs
    runs.settings = WebSettings(max_streams=2)
    async with (
        served(app) as client,
        client.stream("POST", "/", json=agui_input("r1", text="Hi")) as response,
    ):
        reader = SSEReader(response)
        assert await reader.next() is not None  # (its stream holds a slot)
        assert runs.open_streams == 1
        assert runs.stream_room("ada") is None  # (was: refused, max_streams=1)
        runs.settings = WebSettings(max_streams=1)
        refused = runs.stream_room("ada")
        assert refused is not None
        assert (refused.setting, refused.limit) == ("max_streams", 1)
        hold.set()
        await reader.rest()
