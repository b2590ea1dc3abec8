"""The SDK puts ids into URL paths as one segment, and never hands back an answer that is not the API's
(a redirect, a body that is not JSON) as if it were one (a tenant's test: ``Client.job("../tokens")``
returned the tokens listing; ``show ""`` ended in a JSONDecodeError traceback)."""

from __future__ import annotations

import httpx
import pytest

from accelpool.core.errors import InputError
from accelpool.sdk import ApiError, Client, segment


def client(handler) -> tuple[Client, list[str]]:  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return handler(request)

    return Client("http://test", "tok", transport=httpx.MockTransport(record)), seen


@pytest.mark.parametrize(
    "bad", ["", " ", ".", "..", "../tokens", "j-1/events", "x?offset=1", "a#b", "a\\b", "a\nb"]
)
def test_an_id_that_would_change_the_path_is_refused_before_any_request(bad: str) -> None:
    c, seen = client(lambda r: httpx.Response(200, json={}))
    for call in (c.job, c.cancel, c.logs_page, lambda j: c.report_progress(j, steps=1)):
        with pytest.raises(InputError) as exc:
            call(bad)
        assert exc.value.field == "job"
    assert seen == []


def test_other_ids_are_percent_encoded_as_one_segment() -> None:
    assert segment("j-0123abcd", "job") == "j-0123abcd"
    assert segment("a b%c", "job") == "a%20b%25c"
    c, seen = client(lambda r: httpx.Response(200, json={"id": "x"}))
    c.job("a b%c")
    assert seen == ["/api/v1/jobs/a%20b%25c"]


def test_a_redirect_or_a_body_that_is_not_json_is_an_error_not_an_answer() -> None:
    c, _ = client(lambda r: httpx.Response(307, headers={"location": "/api/v1/jobs"}))
    with pytest.raises(ApiError, match="redirect"):
        c.jobs()
    c, _ = client(lambda r: httpx.Response(200, text="<html>proxy</html>"))
    with pytest.raises(ApiError, match="not JSON"):
        c.jobs()
