"""Schemathesis against the OpenAPI document (issue 12, item 6): every check schemathesis has, response
schema conformance included, on every operation, as an admin and as a member. Bounded for CI (a few
hundred cases, derandomized); bench/torture.py runs the full version (>= 20,000 cases)."""

from __future__ import annotations

import atexit
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from tests.api.conftest import World

pytestmark = pytest.mark.torture

# 422 is also the answer to schema-valid input that the catalogue or the state refuses (an unknown
# accelerator type, a grant that ends in the past, a tenant that does not exist): schemathesis's
# positive-data check must accept it; every other check runs with its defaults.
# 413 and 414 (api/limits.py) are refusals of invalid data too.
CONFIG = {
    "checks": {
        "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]},
        "negative_data_rejection": {
            "expected-statuses": ["400", "401", "403", "404", "405", "406", "409", "413", "414", "415", "422"]
        },
    }
}
_world = World(Path(tempfile.mkdtemp(prefix="accelpool-fuzz-")))
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", _world.app, config=schemathesis.Config.from_dict(CONFIG)
)


# bench/torture.py sets ACCELPOOL_FUZZ_CASES (cases in all) and ACCELPOOL_FUZZ_RANDOM for the full run
_OPERATIONS = 32
_PER_TEST = max(1, int(os.environ.get("ACCELPOOL_FUZZ_CASES", "0")) // (2 * _OPERATIONS)) or 12
_DERANDOMIZE = os.environ.get("ACCELPOOL_FUZZ_RANDOM") != "1"


@pytest.mark.parametrize("who", ["admin", "m1"])
@schema.parametrize()
@settings(
    max_examples=_PER_TEST, deadline=None, derandomize=_DERANDOMIZE, suppress_health_check=list(HealthCheck)
)
def test_every_operation_conforms_to_the_openapi_document(case, who):
    _STATUSES["calls"] += 1
    # A negative case that drops the Authorization header tests that the request is refused: adding the
    # caller's token would mask it (the server's 200 then reads as "schema-violating request accepted").
    negated = case.operation.schema.is_security_param_negated(case)
    response = case.call_and_validate(headers=None if negated else _world.h(who))
    _STATUSES[f"{response.status_code // 100}xx"] += 1


# bench/torture.py reads the number of calls made and their status classes from this file
_STATUSES: Counter[str] = Counter()
_STATS_FILE = os.environ.get("ACCELPOOL_FUZZ_STATS")
if _STATS_FILE:
    atexit.register(lambda: Path(_STATS_FILE).write_text(json.dumps(dict(_STATUSES))))
