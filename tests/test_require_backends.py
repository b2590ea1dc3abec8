"""ACCELPOOL_REQUIRE_BACKENDS=1 turns every skip into a failure, a module skipped at collection included."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()


@pytest.mark.parametrize(
    "body",
    [
        'import pytest\npytest.importorskip("accelpool_no_such_backend")\n\ndef test_x():\n    pass\n',
        'import pytest\n\ndef test_x():\n    pytest.skip("no backend")\n',
    ],
    ids=["module-importorskip", "test-skip"],
)
def test_skip_fails_only_when_backends_are_required(
    pytester: pytest.Pytester, monkeypatch, body: str
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_mod=body, test_ok="def test_ok():\n    pass\n")
    monkeypatch.delenv("ACCELPOOL_REQUIRE_BACKENDS", raising=False)
    relaxed = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert relaxed.ret == 0
    relaxed.assert_outcomes(passed=1, skipped=1)
    monkeypatch.setenv("ACCELPOOL_REQUIRE_BACKENDS", "1")
    strict = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert strict.ret != 0
    strict.stdout.fnmatch_lines(["*skipped although ACCELPOOL_REQUIRE_BACKENDS=1*"])
