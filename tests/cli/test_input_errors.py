"""Every CLI input error: exit 2 and one line on stderr, never a traceback (issue 12, item 4)."""

from __future__ import annotations

import pytest
from tests.cli.test_users import cli  # noqa: F401 - the fixture


def _one_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (b"name: demo\ncommand: echo \xff\xfe\n", "bad.yaml:2: not UTF-8 text"),
        (b'name: demo\nresources: {type: h100}\ncommand: "a\\0b"\n', "NUL"),
        (b'name: demo\nresources: {type: h100}\ncommand: echo\nenv: {A: "\\0"}\n', "field 'env.A'"),
    ],
)
def test_submit_of_bad_file_content_is_one_line_exit_2(cli, tmp_path, content, expect):  # noqa: F811
    f = tmp_path / "bad.yaml"
    f.write_bytes(content)
    code, _, err = cli("submit", str(f))
    assert code == 2 and expect in _one_line(err), err


def test_submit_of_a_directory_or_missing_file_is_one_line_exit_2(cli, tmp_path):  # noqa: F811
    code, _, err = cli("submit", str(tmp_path))
    assert code == 2 and "is a directory" in _one_line(err)
    code, _, err = cli("submit", str(tmp_path / "nope.yaml"))
    assert code == 2 and "no such file" in _one_line(err)


def test_other_file_arguments_are_one_line_exit_2(cli, tmp_path):  # noqa: F811
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\xff\xfe\x00junk")
    for args in (
        ("allocate", str(tmp_path)),
        ("allocate", str(bad)),
        ("catalog", "--catalog", str(bad)),
        ("catalog", "--catalog", str(tmp_path)),
        ("simulate", "--trace", str(tmp_path)),
    ):
        code, _, err = cli(*args)
        assert code == 2, (args, code, err)
        _one_line(err)


def test_a_checkpoint_root_inside_the_data_dir_is_refused(cli, tmp_path):  # noqa: F811
    data = tmp_path / "data"
    code, _, err = cli("up", "--data-dir", str(data), "--checkpoint-root", str(data / "ck"))
    assert code == 2 and "--checkpoint-root" in _one_line(err) and "outside the data dir" in err, err


@pytest.mark.parametrize(
    "args",
    [
        ("nodes", "add", "x", "h100", "-3"),
        ("grants", "create", "p1", "t1", "-5"),
        ("programs", "create", "p9", "-100"),
        ("grants", "create", "p1", "t1", "-5", "--days", "3"),
    ],
)
def test_a_negative_number_is_named_not_read_as_an_option(cli, args):  # noqa: F811
    # Click read "-3" as an unknown option: "No such option: -3", in a box, naming neither field nor problem
    code, out, err = cli(*args, token=cli.admin)
    line = _one_line(err)
    negative = next(a for a in args if a.startswith("-") and a[1:2].isdigit())
    assert code == 2 and line.startswith(f"error: {negative}: a negative number"), err
    assert "No such option" not in err


def test_a_negative_option_value_is_left_to_the_options_own_check(cli):  # noqa: F811
    code, _, err = cli("grants", "update", "g1", "--amount", "-5", token=cli.admin)
    assert code == 2 and "amount" in err and "a negative number" not in err, err
