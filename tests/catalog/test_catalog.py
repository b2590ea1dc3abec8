"""The accelerator catalogue: coverage of the reference list, unknowns kept unknown, operator overrides."""

from __future__ import annotations

import pytest

from accelpool.catalog import load_catalog, parse_catalog_text
from accelpool.core.errors import InputError

REQUIRED = [
    "a100",
    "h100",
    "h200",
    "b200",
    "l40s",
    "warboy",
    "rngd",
    "atom",
    "atom-max",
    "rebel-quad",
    "x220",
    "x330",
    "gaudi2",
    "gaudi3",
    "mi300x",
]


def test_every_reference_accelerator_is_there_with_runtime_names():
    cat = load_catalog()
    for t in REQUIRED:
        assert t in cat, t
    assert cat["h100"].bf16_tflops_dense == pytest.approx(989.4)  # dense, not the sparse 1,979
    assert cat["h100"].k8s_resource == "nvidia.com/gpu" and cat["h100"].ray_resource == "GPU"
    assert cat["rngd"].visible_devices_env == "FURIOSA_DEVICES" and cat["rngd"].ray_resource == "FURIOSA"
    assert cat["atom"].visible_devices_env == "RBLN_DEVICES"


def test_domestic_flag_follows_country():
    cat = load_catalog()
    assert {t for t in cat if cat[t].domestic} >= {
        "warboy",
        "rngd",
        "atom",
        "atom-max",
        "rebel-quad",
        "x220",
        "x330",
    }
    assert not cat["h100"].domestic and not cat["mi300x"].domestic


def test_unknown_figures_stay_unknown():
    cat = load_catalog()
    assert cat["atom"].memory_bw_gbps is None
    assert cat["x220"].int8_tops_dense is None
    assert cat["warboy"].tdp_w is None


def test_aliases_and_did_you_mean():
    cat = load_catalog()
    assert cat.resolve("nvidia-h100-sxm") == "h100"
    assert cat.resolve("RNGD") == "rngd"
    with pytest.raises(InputError, match="did you mean 'h100'"):
        cat.resolve("h10")


def test_operator_file_overrides_and_adds(tmp_path):
    f = tmp_path / "ops.yaml"
    f.write_text(
        "accelerators:\n  - id: h100\n    tdp_w: 650\n  - id: myx\n    name: My X\n    vendor: Acme\n"
        "    country: KR\n    memory_gb: 32\n"
    )
    cat = load_catalog([f])
    assert cat["h100"].tdp_w == 650 and cat["h100"].memory_gb == 80
    assert cat["myx"].domestic and cat["myx"].memory_gb == 32


@pytest.mark.parametrize(
    "text, line, field",
    [
        ("accelerators:\n  - id: h100\n    tdp_w: -5\n", 3, "tdp_w"),
        ("accelerators:\n  - id: new\n    name: N\n    vendor: V\n", 2, "country"),
        ("accelerators:\n  - id: h100\n    memroy_gb: 3\n", 3, "memroy_gb"),
        ("accelerators:\n  - id: h100\n    training_capable: maybe\n", 3, "training_capable"),
    ],
)
def test_bad_operator_yaml_names_file_line_and_field(text, line, field):
    with pytest.raises(InputError) as info:
        parse_catalog_text(text, "ops.yaml", base=load_catalog())
    err = info.value
    assert (err.file, err.line, err.field) == ("ops.yaml", line, field)
    assert f"ops.yaml:{line}" in err.describe()


def test_malformed_yaml_reports_line():
    with pytest.raises(InputError) as info:
        parse_catalog_text("accelerators:\n  - id: [unclosed\n", "bad.yaml")
    assert info.value.file == "bad.yaml" and info.value.line is not None


def test_cli_catalog_bad_file_exits_2(tmp_path, capsys):
    from accelpool.cli.main import main

    bad = tmp_path / "x.yaml"
    bad.write_text("accelerators:\n  - id: h100\n    tdp_w: lots\n")
    assert main(["catalog", "--catalog", str(bad)]) == 2
    assert "x.yaml:3" in capsys.readouterr().err
    assert main(["catalog", "--json"]) == 0
