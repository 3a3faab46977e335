"""Checking an AWS Signature Version 4 on a request, as AWS does (standard library only).

A Bedrock request is signed by its SDK with the caller's secret key: the fake server
recomputes the signature from the request it received (its method, path, signed headers
and body) and the secret it knows for the access key the request names, and refuses a
request whose signature is missing, malformed or wrong, as AWS does (HTTP 403). A
``Bearer`` token (a Bedrock API key) is taken as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, urlsplit

__all__ = ["check_signature"]

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/"
    r"(?P<service>[^/,\s]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;\-]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


def check_signature(
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Mapping[str, str],
    service: str,
) -> str | None:
    """Why AWS would refuse the request's authentication, if it would.

    Args:
        method: The request's method.
        target: The request's target as sent (its path, percent-encoded, and query).
        headers: Its headers, names lower-cased.
        body: Its body.
        secrets: The secret key of each access key the server knows.
        service: The signing name of the service (``bedrock``).
    """
    given = headers.get("authorization", "")
    if given.startswith("Bearer ") and given[len("Bearer ") :].strip():
        return None
    match = _AUTHORIZATION.fullmatch(given.strip())
    if match is None:
        return "Missing Authentication Token" if not given else "Authorization header malformed"
    secret = secrets.get(match["key"])
    if secret is None:
        return "The security token included in the request is invalid."
    amz_date = headers.get("x-amz-date", "")
    if not amz_date.startswith(match["date"]):
        return "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date."
    if match["service"] != service:
        return f"Credential should be scoped to correct service: '{service}'."
    signed = match["signed"].split(";")
    if "host" not in signed or any(name not in headers for name in signed):
        return "The request signature we calculated does not match the signature you provided."
    split = urlsplit(target)
    query = "&".join(
        f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}"
        for name, value in sorted(parse_qsl(split.query, keep_blank_values=True))
    )
    canonical = "\n".join(
        [
            method,
            quote(split.path or "/", safe="/~"),
            query,
            "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed),
            ";".join(signed),
            headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{match['date']}/{match['region']}/{match['service']}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret}".encode()
    for part in (match["date"], match["region"], match["service"], "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match["signature"]):
        return "The request signature we calculated does not match the signature you provided."
    return None
