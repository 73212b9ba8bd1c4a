"""site.grid: the shipped table of published factors, naming one, and a factor of the site's own.

What an energy auditor checks: every shipped value is the published one and says where it comes
from; a record's carbon figure names its factor (id, year, value) and says CO2 or CO2e."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agent.config.engine_setup import build_engine_setup
from agent.config.grid import shipped_grid_factors
from agent.config.issues import ConfigError
from agent.config.loader import load_config
from agent.kpi.energy import CarbonFactor
from tests.conftest import CASES

# The published values, as the reports cited in the table give them.
PUBLISHED = {
    "cn-mee-2021-national": (2021, 0.5568),
    "cn-mee-2021-national-fossil": (2021, 0.8426),
    "cn-mee-2022-national": (2022, 0.5366),
    "cn-mee-2022-national-excl-market": (2022, 0.5856),
    "cn-mee-2022-national-fossil": (2022, 0.8325),
    "cn-mee-2022-east-china": (2022, 0.5617),
    "cn-mee-2022-north-china": (2022, 0.6776),
    "cn-mee-2022-southwest-china": (2022, 0.2268),
    "cn-mee-2022-hebei": (2022, 0.7252),
    "cn-mee-2022-yunnan": (2022, 0.1073),
    "cn-mee-2023-national": (2023, 0.5306),
    "cn-mee-2023-national-excl-market": (2023, 0.6096),
    "cn-mee-2023-national-fossil": (2023, 0.8273),
    "cn-mee-2023-east-china": (2023, 0.5500),
    "cn-mee-2023-south-china": (2023, 0.4042),
}


def test_the_shipped_factors_are_the_published_values() -> None:
    table = shipped_grid_factors()
    for factor_id, (year, value) in PUBLISHED.items():
        factor = table[factor_id]
        assert (factor.year, factor.kg_co2_per_kwh, factor.gas) == (year, value, "co2"), factor_id


def test_every_shipped_factor_is_co2_only_and_cites_its_source() -> None:
    table = shipped_grid_factors()
    assert len(table) >= 30
    for factor_id, factor in table.items():
        assert factor.gas == "co2", factor_id  # the MEE/NBS factors are CO2, not CO2e
        assert factor_id.startswith(f"cn-mee-{factor.year}-"), factor_id
        assert "MEE/NBS" in factor.source, factor_id
        assert str(factor.kg_co2_per_kwh) in factor.source or f"{factor.kg_co2_per_kwh:.4f}" in factor.source


def test_no_unverified_provincial_value_is_shipped() -> None:
    """Zhejiang's provincial factor could not be verified: the East China grid factor covers it."""
    table = shipped_grid_factors()
    assert not [name for name in table if "zhejiang" in name]
    assert "Zhejiang" in table["cn-mee-2023-east-china"].region


MINIMAL = f"""
agent: {{id: gw-test}}
site:
  enterprise: acme
  site: plant-1
  area: grinding
  GRID
profiles_dir: {CASES / "_devices"}
connections:
  - {{id: plc, transport: modbus-tcp, host: 127.0.0.1, port: 15502}}
lines:
  - {{id: line-1}}
machines:
  - {{id: grinder-01, line: line-1, kind: grinder, profile: grinder, connection: plc, unit: 1,
     ideal_cycle_s: 5.0}}
calendar:
  shifts:
    - {{name: day, start: "08:00", end: "20:00"}}
"""


def workshop(tmp_path: Path, grid: str) -> Path:
    path = tmp_path / "workshop.yaml"
    path.write_text(MINIMAL.replace("GRID", textwrap.indent(textwrap.dedent(grid).strip(), "  ").strip()))
    return path


def errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [f"{issue.path}: {issue.message}" for issue in caught.value.issues]


@pytest.mark.parametrize(
    "written", ["grid: cn-mee-2023-east-china", "grid: {factor: cn-mee-2023-east-china}"]
)
def test_a_shipped_factor_by_its_id(tmp_path: Path, written: str) -> None:
    setup = build_engine_setup(load_config(workshop(tmp_path, written)))
    assert setup.carbon == CarbonFactor("cn-mee-2023-east-china", "co2", 0.55, 2023)
    assert setup.kgce_per_kwh == 0.1229  # GB/T 2589-2020, equivalent value, by default


def test_a_factor_of_your_own_says_co2_or_co2e(tmp_path: Path) -> None:
    own = """
        grid: {id: ppa-2025, kg_co2e_per_kwh: 0.41, year: 2025, scope: supplier, region: Zhejiang,
               basis: market, source: "contract 2025-017, annex 3"}
    """
    setup = build_engine_setup(load_config(workshop(tmp_path, own)))
    assert setup.carbon == CarbonFactor("ppa-2025", "co2e", 0.41, 2025)


def test_no_grid_factor_no_carbon(tmp_path: Path) -> None:
    assert build_engine_setup(load_config(workshop(tmp_path, "timezone: Asia/Shanghai"))).carbon is None


@pytest.mark.parametrize(
    ("grid", "expected"),
    [
        ("grid: cn-mee-2023-east", "site.grid: unknown grid factor 'cn-mee-2023-east'; did you mean"),
        (
            "grid: {factor: cn-mee-2019-national}",
            "site.grid.factor: unknown grid factor 'cn-mee-2019-national'",
        ),
        (
            "grid: {id: mine, kg_co2_per_kwh: 0.5, year: 2024}",
            "site.grid: a factor of your own needs scope, region, basis, source",
        ),
        (
            "grid: {id: mine, kg_co2_per_kwh: 0.5, kg_co2e_per_kwh: 0.6, year: 2024, scope: site, region: x, "
            "basis: location, source: y}",
            "site.grid: a factor of your own needs exactly one of kg_co2_per_kwh and kg_co2e_per_kwh",
        ),
        (
            "grid: {factor: cn-mee-2022-national, year: 2023}",
            "site.grid: 'factor' names a shipped factor whose provenance is in the table; year belong",
        ),
        (
            "grid: {kg_co2e_per_kwh: 0.5366, year: 2022}",
            "site.grid: a factor of your own needs id, scope, region, basis, source",
        ),
        (
            "grid: {id: cn-mee-2023-national, kg_co2_per_kwh: 0.6, year: 2023, scope: national, "
            "region: China, basis: location, source: somewhere}",
            "site.grid.id: 'cn-mee-2023-national' is the id of a shipped factor (0.5306 kg CO2/kWh, 2023)",
        ),
        ("grid: {id: mine, kg_co2_per_kwh: 7.0}", "site.grid.kg_co2_per_kwh: Input should be less than 5"),
    ],
    ids=[
        "unknown-id",
        "unknown-factor",
        "own-incomplete",
        "own-two-values",
        "shipped-with-fields",
        "old-form-without-source",
        "own-reuses-shipped-id",
        "implausible-value",
    ],
)
def test_a_factor_without_provenance_is_refused_saying_what_to_write(
    tmp_path: Path, grid: str, expected: str
) -> None:
    found = errors(workshop(tmp_path, grid))
    assert any(expected in line for line in found), found


def test_the_old_form_of_a_published_value_is_read_as_that_factor_with_a_warning(tmp_path: Path) -> None:
    """Configurations written before factors had provenance keep working: 0.5366 of 2022 was the
    national CO2 factor (published as co2e_kg before), and is now read as cn-mee-2022-national."""
    old = "grid: {kg_co2e_per_kwh: 0.5366, year: 2022, source: national average grid factor 2022}"
    config = load_config(workshop(tmp_path, old))
    assert build_engine_setup(config).carbon == CarbonFactor("cn-mee-2022-national", "co2", 0.5366, 2022)
    [warning] = config.warnings
    assert str(warning).endswith(
        "site.grid: deprecated form kg_co2e_per_kwh/year/source: 0.5366 of 2022 is the published "
        "CO2-only factor cn-mee-2022-national, and is read as it (records say co2_kg); write grid: "
        "cn-mee-2022-national"
    )
    assert ":7:" in str(warning)  # at its line


def test_the_old_form_of_another_value_is_the_co2e_factor_it_says_it_is(tmp_path: Path) -> None:
    old = "grid: {kg_co2e_per_kwh: 0.581, year: 2012, source: old regional factor}"
    config = load_config(workshop(tmp_path, old))
    assert build_engine_setup(config).carbon == CarbonFactor("legacy-2012", "co2e", 0.581, 2012)
    [warning] = config.warnings
    assert "read as the CO2e factor it says it is, without provenance, as 'legacy-2012'" in str(warning)
    assert "e.g. grid: cn-mee-2023-east-china" in str(warning)
    assert not load_config(workshop(tmp_path, "grid: cn-mee-2022-national")).warnings


def test_the_same_value_under_a_shipped_id_is_the_shipped_factor(tmp_path: Path) -> None:
    """A plant that wrote a year's factor itself keeps a valid file once a release ships it."""
    own = """
        grid: {id: cn-mee-2023-national, kg_co2_per_kwh: 0.5306, year: 2023, scope: national,
               region: China, basis: location, source: "MEE/NBS 2023 announcement"}
    """
    assert build_engine_setup(load_config(workshop(tmp_path, own))).carbon == CarbonFactor(
        "cn-mee-2023-national", "co2", 0.5306, 2023
    )


def test_an_own_standard_coal_coefficient_needs_its_source(tmp_path: Path) -> None:
    found = errors(workshop(tmp_path, "standard_coal: {kgce_per_kwh: 0.3}"))
    assert found == [
        "site.standard_coal: a coefficient of your own needs its source (e.g. the equal value (等价值) of "
        "the year's coal consumption per kWh supplied, with the publication); the default is GB/T "
        "2589-2020, Appendix A: electricity, equivalent value (当量值), 0.1229 kgce/kWh"
    ]
    given = 'standard_coal: {kgce_per_kwh: 0.3, source: "equal value 2024, statistical yearbook table 9-5"}'
    assert build_engine_setup(load_config(workshop(tmp_path, given))).kgce_per_kwh == 0.3
