"""What one streamed token costs to frame for a follower: ours against the a2a-sdk's dispatcher.

Run by hand (``python tests/benchmarks/a2a_framing.py [--events 20000] [--followers 1]``),
not collected by pytest. ``a2a_app`` logs each event of a task once, as the JSON text its
encoder wrote, and frames it for each follower's request by joining strings (the JSON-RPC
envelope around it). The a2a-sdk's ``JsonRpcDispatcher`` takes protobuf events from its
request handler and, for each follower, turns each into a ``StreamResponse``, a dict
(``MessageToDict``), a JSON-RPC response (``JSONRPC20Response``) and JSON text; so an
event already logged as JSON, served through it, is parsed back into protobuf first.

It times both on the same token events (an ``artifactUpdate`` of one token each, the most
frequent event of a stream), and prints the microseconds an event costs each way, and the
ratio; the raw baseline is a bare ``json.dumps`` of the same event, in the same run.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from a2a.types import StreamResponse
from a2a.utils import json_utils, proto_utils
from google.protobuf.json_format import MessageToDict, Parse
from jsonrpc.jsonrpc2 import JSONRPC20Response  # type: ignore[import-untyped]  # (the SDK's dependency)

from miniagents.ext.a2a._rpc import framer


def token_events(count: int) -> list[str]:
    """``count`` token events of one artifact, as a MiniAgents server logs them."""
    return [
        json.dumps(
            {
                "artifactUpdate": {
                    "taskId": "3f2c1a9e-5b7d-4e0f-9a1b-2c3d4e5f6a7b",
                    "contextId": "8a7b6c5d-4e3f-2a1b-0c9d-8e7f6a5b4c3d",
                    "artifact": {"artifactId": "3f2c1a9e-0", "parts": [{"text": f"tok{n} "}]},
                    "append": True,
                    "lastChunk": False,
                }
            },
            separators=(",", ":"),
        )
        for n in range(count)
    ]


def ours(events: list[str]) -> None:
    frame = framer(1)
    for event in events:
        frame(event)


def sdks(events: list[str]) -> None:
    for event in events:
        response = Parse(event, StreamResponse())  # (a logged event, back into protobuf)
        result = MessageToDict(proto_utils.to_stream_response(response.artifact_update))
        json_utils.dumps(JSONRPC20Response(result=result, _id=1).data)


def baseline(events: list[str]) -> None:
    for event in events:
        json.dumps({"jsonrpc": "2.0", "id": 1, "result": event})


def timed(run: Callable[[list[str]], None], events: list[str], followers: int) -> float:
    """Microseconds per event per follower (the best of 3 runs)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(followers):
            run(events)
        best = min(best, time.perf_counter() - start)
    return best / (len(events) * followers) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--followers", type=int, default=1)
    options = parser.parse_args()
    events = token_events(options.events)
    base = timed(baseline, events, options.followers)
    mine = timed(ours, events, options.followers)
    theirs = timed(sdks, events, options.followers)
    print(f"{options.events} token events, {options.followers} follower(s):")
    print(f"  json.dumps of the envelope (baseline): {base:.2f} µs an event")
    print(f"  a2a_app's framing: {mine:.2f} µs an event ({mine / base:.2f}x the baseline)")
    print(f"  the SDK dispatcher's: {theirs:.2f} µs an event ({theirs / base:.2f}x the baseline)")
    print(f"  the SDK's path costs {theirs / mine:.0f} times ours")


if __name__ == "__main__":
    main()
