"""Request limits, checked before a request reaches a route: one request cannot hurt the service.

An ASGI middleware (no per-request task or copy beyond the body it must read anyway). It refuses, with the
API's error body naming the field:

- a body over ``max_body_bytes`` (413, field ``(body)``), by ``Content-Length`` before reading, or while
  reading a chunked body;
- in a JSON body: bytes that are not UTF-8 or escaped lone surrogates, a NUL character in any key or
  string, a string (or key) longer than ``max_string_chars``, nesting deeper than ``max_depth`` (422; the
  field is the path to the offending value, e.g. ``env.HOME``); an integer of more than ``max_int_digits``
  digits (422 naming its path: Python refuses to read one of over 4,300 digits, which was a 500);
- in the query string: names or values that are not UTF-8, contain NUL or are longer than
  ``max_query_chars`` (422, field: the parameter's name);
- in the path: bytes that are not UTF-8, or NUL (422, field ``(path)``); a path longer than
  ``max_path_chars`` (414).

Anything else (malformed JSON, wrong types, bounds of a field) is left to the route's validation.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import Request

from accelpool.api.errors import ApiError

try:
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
    _DecodeError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - orjson is a dependency; the stdlib gives the same answers

    def _loads(b: bytes) -> Any:
        return json.loads(b.decode("utf-8"))

    _DecodeError = ValueError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1 << 20  # 1 MiB: a job spec is a few KB; env and command have their own caps
    max_depth: int = 32
    max_string_chars: int = 100_000  # the job command's own cap
    max_query_chars: int = 1_000
    max_path_chars: int = 2_000
    max_int_digits: int = 1_000  # no field takes a number near 10^1000; Python reads at most 4,300 digits
    # a tenant's active jobs (queued, running), counted at submission (core.errors.active_refusal); None: no
    # cap. 10,000 as Slurm's MaxJobCount default (slurm.conf(5)), but per tenant
    max_active_jobs: int | None = 10_000


class Refused(Exception):
    def __init__(self, status: int, reason: str, field: str) -> None:
        super().__init__(reason)
        self.status, self.reason, self.field = status, reason, field


def _path_str(path: tuple[str | int, ...]) -> str:
    text = ".".join(str(p) for p in path) or "(body)"
    return text if len(text) <= 200 else text[:197] + "..."


def _key_repr(k: str) -> str:
    """A key for a field path, printable (NUL and surrogates escaped) and short."""
    r = k.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace").replace("\x00", "\\u0000")
    return r if len(r) <= 60 else r[:57] + "..."


def _bad_string(s: str, limits: Limits) -> str | None:
    if "\x00" in s:
        return "must not contain a NUL character (\\u0000)"
    if len(s) > limits.max_string_chars:
        return f"must be at most {limits.max_string_chars} characters (it has {len(s)})"
    return None


def _has_surrogate(s: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in s)


class _LongInt:
    """What the body's parser reads for an integer of more than ``Limits.max_int_digits`` digits (not read
    as an int: Python refuses over 4,300 digits), for ``check_value`` to refuse with its path."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _int_reader(limits: Limits) -> Callable[[str], Any]:
    def read(text: str) -> Any:
        digits = len(text) - text.startswith("-")
        return _LongInt(digits) if digits > limits.max_int_digits else int(text)

    return read


def check_value(doc: Any, limits: Limits) -> None:
    """Walk a parsed JSON document (iteratively): raise Refused at the first NUL, over-long string,
    over-long integer or over-deep nesting, naming its path."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(doc, ())]
    while stack:
        v, path = stack.pop()
        if isinstance(v, str):
            why = _bad_string(v, limits)
            if why:
                raise Refused(422, why, _path_str(path))
        elif isinstance(v, _LongInt):
            reason = f"an integer of {v.digits} digits: at most {limits.max_int_digits} digits"
            raise Refused(422, reason, _path_str(path))
        elif isinstance(v, dict | list):
            if len(path) >= limits.max_depth:
                raise Refused(422, f"nested deeper than {limits.max_depth} levels", _path_str(path))
            if isinstance(v, dict):
                for k, item in v.items():
                    why = _bad_string(k, limits)
                    if why:
                        raise Refused(
                            422, f"key {why.removeprefix('must ')}", _path_str(path + (_key_repr(k),))
                        )
                    stack.append((item, path + (k,)))
            else:
                stack.extend((item, path + (i,)) for i, item in enumerate(v))


def _surrogate_path(doc: Any) -> tuple[str | int, ...] | None:
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(doc, ())]
    while stack:
        v, path = stack.pop()
        if isinstance(v, str) and _has_surrogate(v):
            return path
        if isinstance(v, dict):
            for k, item in v.items():
                if _has_surrogate(k):
                    return path + (_key_repr(k),)
                stack.append((item, path + (k,)))
        elif isinstance(v, list):
            stack.extend((item, path + (i,)) for i, item in enumerate(v))
    return None


def _depth_path(body: bytes, max_depth: int) -> tuple[str | int, ...]:
    """Where a JSON text first nests deeper than ``max_depth``: a scan of the text, only on the error path
    for a document too deep to parse."""
    frames: list[list[Any]] = []  # [is_object, current key or index]
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c == 0x22:  # a string; in an object, a key when the next non-blank byte is ':'
            j = i + 1
            while j < n and body[j] != 0x22:
                j += 2 if body[j] == 0x5C else 1
            k = j + 1
            while k < n and body[k] in b" \t\r\n":
                k += 1
            if frames and frames[-1][0] and k < n and body[k] == 0x3A:
                frames[-1][1] = _key_repr(body[i + 1 : j].decode("utf-8", "replace"))
            i = j + 1
            continue
        if c in (0x7B, 0x5B):  # { [
            if len(frames) >= max_depth:
                return tuple(f[1] for f in frames)
            frames.append([c == 0x7B, None if c == 0x7B else 0])
        elif c in (0x7D, 0x5D) and frames:
            frames.pop()
        elif c == 0x2C and frames and not frames[-1][0]:  # , in an array
            frames[-1][1] += 1
        i += 1
    return ()


NOT_JSON = object()
"""What ``check_json`` returns for a body that is not JSON."""

JSON_SCOPE_KEY = "accelpool.json"
"""Where ``RequestLimits`` leaves the parsed JSON body in the ASGI scope, for a route that would parse it
again (``routers/jobs._submit_fast``): the same document the standard library's ``json.loads`` gives."""


def check_json(body: bytes, limits: Limits) -> Any:
    """Raise Refused when a JSON body breaks a limit; return the parsed document when it is within them,
    or NOT_JSON when it is not JSON at all (the route's validation then answers)."""
    try:
        doc = _loads(body)
    except _DecodeError as exc:
        msg = str(exc)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as u:
            _refuse_encoding(body, f"is not valid UTF-8 (byte {u.start} of the body)")
            raise AssertionError from u  # unreachable: _refuse_encoding raises
        if "surrogate" in msg or "UTF-8" in msg:
            _refuse_encoding(body, "contains an escaped lone surrogate: not valid Unicode")
        if "depth" in msg or "recursion" in msg.lower():
            raise Refused(
                422,
                f"nested deeper than {limits.max_depth} levels",
                _path_str(_depth_path(body, limits.max_depth)),
            ) from exc
        try:  # e.g. an integer beyond 64 bits, or NaN, which orjson refuses; the route checks its bounds
            doc = json.loads(text, object_pairs_hook=_one_each, parse_int=_int_reader(limits))
        except (ValueError, RecursionError):
            return NOT_JSON  # the route answers 422 for it
        check_value(doc, limits)
        return doc
    check_value(doc, limits)
    if isinstance(doc, (dict, list)):
        # orjson keeps the last of a key given twice: look again with the standard library (~5 us for a
        # job submission's body)
        try:
            json.loads(body, object_pairs_hook=_one_each)
        except (ValueError, RecursionError):  # orjson read it: what it read stands
            pass
    return doc


def _one_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object of a JSON body, refused (422 naming the key) when a key comes twice: parsers keep the last
    one silently, so ``{"command": "a", "command": "b"}`` ran "b" (a tenant's test; the CLI refuses the
    same in YAML)."""
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise Refused(422, f"duplicate key '{_key_repr(k)}' in one object of the body", _key_repr(k))
            seen.add(k)
    return d


def _refuse_encoding(body: bytes, reason: str) -> None:
    try:
        doc = json.loads(body.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        raise Refused(422, f"the body {reason}", "(body)") from None
    where = _surrogate_path(doc)
    raise Refused(422, reason if where else f"the body {reason}", _path_str(where or ()))


def _query_error(qs: bytes, limits: Limits) -> Refused | None:
    for part in qs.split(b"&"):
        if not part:
            continue
        name_b, _, value_b = part.partition(b"=")
        name_raw = unquote_to_bytes(name_b.replace(b"+", b" "))
        try:
            name = name_raw.decode("utf-8")
        except UnicodeDecodeError:
            return Refused(422, "query parameter name is not valid UTF-8", "(query)")
        field = _key_repr(name)
        if "\x00" in name or len(name) > 100:
            return Refused(422, "not a valid query parameter name", field or "(query)")
        try:
            value = unquote_to_bytes(value_b.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return Refused(422, "is not valid UTF-8", field)
        if "\x00" in value:
            return Refused(422, "must not contain a NUL character (\\u0000)", field)
        if len(value) > limits.max_query_chars:
            return Refused(422, f"must be at most {limits.max_query_chars} characters", field)
    return None


def _target_error(scope: Scope, limits: Limits) -> Refused | None:
    raw = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
    if len(raw) > limits.max_path_chars:
        return Refused(414, f"the path is longer than {limits.max_path_chars} characters", "(path)")
    if b"%" in raw:
        try:
            decoded = unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return Refused(422, "the path is not valid UTF-8", "(path)")
        if "\x00" in decoded:
            return Refused(422, "the path must not contain a NUL character", "(path)")
    qs = scope.get("query_string") or b""
    return _query_error(qs, limits) if qs else None


def _header(scope: Scope, name: bytes) -> bytes | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return bytes(v)
    return None


async def _send_refusal(send: Send, r: Refused) -> None:
    body = json.dumps({"error": {"status": r.status, "field": r.field, "reason": r.reason}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": r.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RequestLimits:
    """ASGI middleware applying ``Limits`` (see the module's docstring)."""

    def __init__(self, app: ASGIApp, limits: Limits | None = None) -> None:
        self.app = app
        self.limits = limits or Limits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.limits
        refused = _target_error(scope, limits)
        if refused is not None:
            await _send_refusal(send, refused)
            return
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if (
            length is not None
            and length.strip().isascii()
            and length.strip().isdigit()
            and int(length) > limits.max_body_bytes
        ):
            await _send_refusal(send, _too_big(limits))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limits.max_body_bytes:
                await _send_refusal(send, _too_big(limits))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if body:
            ctype = _header(scope, b"content-type") or b""
            if not ctype or b"json" in ctype.lower():
                try:
                    doc = check_json(body, limits)
                except Refused as r:
                    await _send_refusal(send, r)
                    return
                if doc is not NOT_JSON:
                    scope[JSON_SCOPE_KEY] = doc
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_big(limits: Limits) -> Refused:
    return Refused(413, f"the body is larger than {limits.max_body_bytes} bytes", "(body)")


_known_query: dict[int, frozenset[str]] = {}


async def known_query_only(request: Request) -> None:
    """A route dependency: a query parameter the route does not take is 422 naming it (as an unknown
    body field is), instead of being silently ignored (a typo such as ``?stat=running`` would list all).
    Async, as it does no I/O: a sync dependency would cost every request a hop to the thread pool."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.query_params:
        return
    names = _known_query.get(id(route))
    if names is None:
        found: set[str] = set()
        todo = [dependant]
        while todo:
            d = todo.pop()
            found.update(p.alias for p in d.query_params)
            todo.extend(d.dependencies)
        names = frozenset(found)
        _known_query[id(route)] = names
    for name in request.query_params:
        if name not in names:
            raise ApiError(422, "unknown query parameter", _key_repr(name) or "(query)")
