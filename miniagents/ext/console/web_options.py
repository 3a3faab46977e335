"""The command lines' options of the web apps' settings and serving, declared once.

``miniagents web`` and ``miniagents studio`` take them: each option sets the field of
:class:`~miniagents.ext.web.WebSettings` or the argument of
:func:`~miniagents.ext.web.serving.server_config` it is named after (``--body-seconds``,
``--max-connections``; a list's in the singular, repeated: ``--allow-host``,
``--trusted-proxy``). A command adds the ones that apply to it (:func:`add_web_options`) and
reads back those given (:func:`web_options_given`), each parsed to its type; a value the
app or the serving cannot keep to is their ``WebConfigurationError``, whose ``parameter``
:func:`option_flag` names as the option. This module imports neither the web extra nor the
apps: a command's parser is made without them.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any, TypeAlias

__all__ = [
    "SERVING_OPTIONS",
    "SETTINGS_OPTIONS",
    "WebOption",
    "add_web_options",
    "option_flag",
    "web_options_given",
]

WebOption: TypeAlias = tuple[str | None, type, str]
"""An option: its metavar, its type (``list``: repeated, ``bool``: a flag) and its help."""

SETTINGS_OPTIONS: dict[str, WebOption] = {
    "allowed_hosts": (
        "NAME",
        list,
        "a host name the page is reached by, besides localhost, 127.0.0.1, [::1] and --host "
        "(e.g. the machine's name on the network); repeat it for more",
    ),
    "allowed_origins": (
        "ORIGIN",
        list,
        "a front end's origin that may call the assistant too (e.g. "
        "https://chat.example.com); repeat it for more",
    ),
    "approval_edits": (
        None,
        bool,
        "let an approval replace a tool call's arguments (default: off)",
    ),
    "error_texts": (
        None,
        bool,
        "tell the page an agent's error as it is written (default: off: the page is told the "
        "error's class and a reference the log has the error under)",
    ),
    "grace_period": (
        "SECONDS",
        float,
        "seconds an answer goes on after its page left it (default: 10; 0: it stops at once)",
    ),
    "keep_runs_for": (
        "SECONDS",
        float,
        "seconds an ended answer is kept for a page that reconnects, and an answer waits "
        "for its approvals (default: 300)",
    ),
    "max_live_runs": ("N", int, "the most answers streaming or waiting at once (default: 100)"),
    "max_live_runs_per_principal": (
        "N",
        int,
        "the most of them for the token's holder, the one user here (default: 10)",
    ),
    "max_live_run_bytes": (
        "N",
        int,
        "the most bytes one answer's events may hold while it streams: past it, the answer is "
        "cut with an error on the page (default: 4000000)",
    ),
    "max_ended_runs": (
        "N",
        int,
        "the most ended answers kept for pages that reconnect (default: 1000; 0: none)",
    ),
    "max_ended_run_bytes": (
        "N",
        int,
        "the most bytes the ended answers kept for pages that reconnect keep, all together "
        "(default: 32000000; 0: none)",
    ),
    "max_streams": ("N", int, "the most answers sent to pages at once (default: 1000)"),
    "max_streams_per_principal": (
        "N",
        int,
        "the most of them sent to the token's holder (default: 20)",
    ),
    "max_body_bytes": (
        "N",
        int,
        "the largest request the page may send, in bytes: the whole conversation "
        "(default: 1000000)",
    ),
    "max_body_values": (
        "N",
        int,
        "the most JSON values a request may hold, at every depth: the whole conversation "
        "(default: 10000)",
    ),
    "max_id_chars": (
        "N",
        int,
        "the most characters a chat's id may hold (default: 256; a longer one: a 422)",
    ),
    "body_seconds": (
        "SECONDS",
        float,
        "seconds a request has to send its body, all of it (default: 30; past them: a 408)",
    ),
}
"""The option of each field of ``WebSettings`` (its name, the lists' in the singular)."""

SERVING_OPTIONS: dict[str, WebOption] = {
    "max_connections": (
        "N",
        int,
        "the most connections served at once (default: 128; a request on one more: a 503)",
    ),
    "max_connections_per_address": (
        "N",
        int,
        "the most connections served at once from one client address (default: 32; 0: no "
        "such bound; one more from it: a 503)",
    ),
    "headers_seconds": (
        "SECONDS",
        float,
        "seconds a connection has to send a request's line and headers, all of them, from "
        "its opening or its last answer (default: 10; past them it is closed)",
    ),
    "linger_seconds": (
        "SECONDS",
        float,
        "seconds a connection closed before its request was read whole is still read from "
        "(what comes dropped), so that its client gets the answer (default: 2; 0: closed at "
        "once)",
    ),
    "send_seconds": (
        "SECONDS",
        float,
        "seconds an answer may wait for its client to read some of it (default: 60; past "
        "them its connection is closed: a client that stopped reading)",
    ),
    "trusted_proxies": (
        "ADDRESS",
        list,
        "the address of a reverse proxy in front (e.g. 127.0.0.1), whose X-Forwarded-For "
        "and X-Forwarded-Proto headers name a request's client; repeat it for more (default: "
        "none, the headers ignored)",
    ),
}
"""The option of each argument of ``server_config`` that a command line sets."""


def add_web_options(parser: argparse.ArgumentParser, options: Mapping[str, WebOption]) -> None:
    """Add ``options`` (of :data:`SETTINGS_OPTIONS`, :data:`SERVING_OPTIONS`) to ``parser``.

    Each is stored under its field's name, ``None`` when left out (the default then is the
    settings' or the serving's own).
    """
    for name, (metavar, kind, described) in options.items():
        if kind is bool:  # a flag (left out: the settings' default)
            parser.add_argument(
                option_flag(name), dest=name, action="store_true", default=None, help=described
            )
            continue
        how: dict[str, Any] = {"action": "append"} if kind is list else {"type": kind}
        parser.add_argument(option_flag(name), dest=name, metavar=metavar, help=described, **how)


def web_options_given(args: argparse.Namespace, options: Mapping[str, WebOption]) -> dict[str, Any]:
    """The values of ``options`` that ``args`` were given, by their fields' names.

    ``--max-connections-per-address 0`` is ``server_config``'s ``None``: no such bound.
    """
    given = {name: found for name in options if (found := getattr(args, name)) is not None}
    if given.get("max_connections_per_address") == 0:
        given["max_connections_per_address"] = None
    return given


def option_flag(name: str) -> str:
    """The option that sets the field (or argument) ``name``, the lists' in the singular."""
    singular = {
        "allowed_hosts": "allow-host",
        "allowed_origins": "allow-origin",
        "trusted_proxies": "trusted-proxy",
    }
    return f"--{singular.get(name, name.replace('_', '-'))}"
