"""Store refusals map to HTTP answers by their type, never by their message text."""

from __future__ import annotations

from accelpool.api.routers.jobs import _submit_conflict
from accelpool.core.errors import AlreadyExists, InsufficientFunds, MissingReference


def test_refusals_map_by_type_not_text():
    # a message that mentions KRW but is an id clash keeps the id field, and the other way round
    assert _submit_conflict(AlreadyExists("job KRW-1 already exists")).field == "id"
    funds = _submit_conflict(InsufficientFunds("grant g has 5 left; this job needs 9"))
    assert (funds.status, funds.field) == (409, "max_run_time")
    assert _submit_conflict(MissingReference("grant g does not exist", "grant")).field == "grant"
