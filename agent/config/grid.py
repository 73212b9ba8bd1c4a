"""The grid emission factor: `site.grid`, and the published factors shipped with the agent.

A site names a factor from the shipped table (agent/configs/tables/grid-factors.yaml) by its id, or
writes a factor of its own with the same provenance: value and whether it is CO2 or CO2e, year,
scope, region, location- or market-based, and source. A new year's factor is therefore a data
or configuration change, never a code change.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal, Self

from pydantic import Field, ValidationError, model_validator

from agent.config.issues import ConfigIssue
from agent.config.models import Identifier, StrictModel
from agent.config.shipped import shipped_dir
from agent.config.suggest import did_you_mean
from agent.config.yamlsource import LoadedYaml, load_yaml

GRID_FACTORS_FILE = "tables/grid-factors.yaml"
KgPerKwh = Annotated[float, Field(gt=0, lt=5, allow_inf_nan=False)]  # the dirtiest grids are near 1.2
Gas = Literal["co2", "co2e"]
GRID_PATH = ("site", "grid")
SUGGESTED = "cn-mee-2023-east-china"  # Zhejiang lies in the East China grid


class FactorFields(StrictModel):
    """A factor's value and provenance: what an energy audit asks of a carbon figure."""

    kg_co2_per_kwh: KgPerKwh | None = Field(None, description="CO2 only (as all MEE grid factors)")
    kg_co2e_per_kwh: KgPerKwh | None = Field(None, description="CO2 equivalent (all greenhouse gases)")
    year: Annotated[int, Field(ge=1990, le=2100)]
    scope: Literal["national", "regional", "provincial", "supplier", "site"] = Field(
        description="national, regional grid or provincial average; supplier: a contract; site: own power"
    )
    region: str = Field(min_length=1, description="e.g. China, East China grid, Zhejiang")
    basis: Literal["location", "market"] = Field(
        description="location: the grid's average; market: contracts, certificates or a residual mix"
    )
    source: str = Field(min_length=1, description="publication, table and date the value is taken from")
    note: str = ""

    @model_validator(mode="after")
    def _one_value(self) -> Self:
        if (self.kg_co2_per_kwh is None) == (self.kg_co2e_per_kwh is None):
            raise ValueError(
                "give exactly one of kg_co2_per_kwh (a CO2-only factor, as the MEE grid factors are) "
                "and kg_co2e_per_kwh (a CO2-equivalent factor)"
            )
        return self

    @property
    def gas(self) -> Gas:
        return "co2" if self.kg_co2_per_kwh is not None else "co2e"

    @property
    def kg_per_kwh(self) -> float:
        value = self.kg_co2_per_kwh if self.kg_co2_per_kwh is not None else self.kg_co2e_per_kwh
        if value is None:  # _one_value makes this impossible for a validated factor
            raise ValueError("factor without a value")
        return value


class GridFactorTable(StrictModel):
    factors: dict[Identifier, FactorFields]


class GridSetting(StrictModel):
    """site.grid: `grid: <id>` (a shipped factor), or a factor of the site's own with its provenance."""

    factor: str | None = Field(None, description="id of a factor shipped with the agent")
    id: Identifier | None = Field(None, description="your name for your own factor, carried in records")
    kg_co2_per_kwh: KgPerKwh | None = None
    kg_co2e_per_kwh: KgPerKwh | None = None
    year: Annotated[int, Field(ge=1990, le=2100)] | None = None
    scope: Literal["national", "regional", "provincial", "supplier", "site"] | None = None
    region: str | None = Field(None, min_length=1)
    basis: Literal["location", "market"] | None = None
    source: str | None = Field(None, min_length=1)
    note: str = ""

    @model_validator(mode="before")
    @classmethod
    def _id_alone(cls, data: Any) -> Any:
        return {"factor": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _shipped_or_complete(self) -> Self:
        own = {k: v for k, v in self if k not in ("factor", "note") and v is not None}
        if self.factor is not None:
            if own:
                raise ValueError(
                    f"'factor' names a shipped factor whose provenance is in the table; "
                    f"{', '.join(own)} belong to a factor of your own (with an 'id' instead of 'factor')"
                )
            return self
        if self.legacy and self.year is not None and self.source is not None:
            return self  # still read, with a warning (grid_warnings)
        required = ("id", "year", "scope", "region", "basis", "source")
        missing = [k for k in required if getattr(self, k) is None]
        if (self.kg_co2_per_kwh is None) == (self.kg_co2e_per_kwh is None):
            missing.insert(1, "exactly one of kg_co2_per_kwh and kg_co2e_per_kwh")
        if missing:
            raise ValueError(
                f"a factor of your own needs {', '.join(missing)} (id, kg_co2_per_kwh for a CO2-only "
                "factor or kg_co2e_per_kwh for a CO2e one, year, scope, region, basis, source); or name "
                f"a shipped one, e.g. grid: {SUGGESTED}"
            )
        return self

    @property
    def legacy(self) -> bool:
        """The form before factors carried their provenance: {kg_co2e_per_kwh, year, source}."""
        given = {k for k, v in self if v is not None and k != "note"}
        return given <= {"kg_co2e_per_kwh", "year", "source"} and "kg_co2e_per_kwh" in given

    def resolved(self) -> tuple[str, FactorFields]:
        """(id, the factor): from the shipped table, or as written. The id must exist (check_grid).
        The old form is the shipped factor of the same value and year when there is one (0.5366 of
        2022 was the national CO2 factor), else the CO2e factor it said it was, as `legacy-<year>`."""
        if self.factor is not None:
            return self.factor, shipped_grid_factors()[self.factor]
        if self.legacy:
            same = _shipped_like(self)
            if same is not None:
                return same, shipped_grid_factors()[same]
            return f"legacy-{self.year}", FactorFields(
                kg_co2e_per_kwh=self.kg_co2e_per_kwh,
                year=self.year or 0,
                scope="site",
                region="not stated",
                basis="location",
                source=self.source or "not stated",
            )
        if self.id is None:
            raise ValueError("a factor of your own without an id")  # _shipped_or_complete prevents it
        return self.id, FactorFields.model_validate({k: v for k, v in self if k not in ("factor", "id")})


def _shipped_like(setting: GridSetting) -> str | None:
    """The shipped factor an old-form setting's value and year are, if any."""
    for name, factor in shipped_grid_factors().items():
        if factor.kg_per_kwh == setting.kg_co2e_per_kwh and factor.year == setting.year:
            return name
    return None


def legacy_message(setting: GridSetting) -> str:
    """What the old `grid: {kg_co2e_per_kwh, year, source}` is read as, and what to write instead."""
    same = _shipped_like(setting)
    if same is not None:
        read_as = (
            f"{setting.kg_co2e_per_kwh} of {setting.year} is the published CO2-only factor {same}, and is "
            f"read as it (records say co2_kg); write grid: {same}"
        )
    else:
        read_as = (
            f"read as the CO2e factor it says it is, without provenance, as 'legacy-{setting.year}'; name a "
            f"published factor (e.g. grid: {SUGGESTED}, the East China grid, which covers Zhejiang) or "
            "write your own with id, kg_co2_per_kwh (CO2 only) or kg_co2e_per_kwh, year, scope, region, "
            "basis and source"
        )
    return f"deprecated form kg_co2e_per_kwh/year/source: {read_as}"


@functools.cache
def shipped_grid_factors() -> dict[str, FactorFields]:
    """The table shipped in the package. A broken table is a broken install, not a user's error."""
    path = shipped_dir() / GRID_FACTORS_FILE
    loaded = load_yaml(path)
    problem: object = loaded.issues[0] if loaded.issues else None
    if problem is None:
        try:
            return dict(GridFactorTable.model_validate(loaded.data).factors)
        except ValidationError as error:
            problem = error
    raise RuntimeError(f"{path}: the shipped grid factor table is damaged ({problem}): reinstall")


def grid_warnings(loaded: LoadedYaml) -> list[ConfigIssue]:
    """The deprecated form of site.grid still works; this says how it is read and what to write."""
    site = loaded.data.get("site") if isinstance(loaded.data, dict) else None
    if not isinstance(site, dict) or not isinstance(site.get("grid"), dict):
        return []
    try:
        setting = GridSetting.model_validate(site["grid"])
    except ValidationError:
        return []
    return [loaded.issue(GRID_PATH, legacy_message(setting))] if setting.legacy else []


def check_grid(loaded: LoadedYaml) -> list[ConfigIssue]:
    """site.grid names a shipped factor, or a factor of its own under an id of its own."""
    site = loaded.data.get("site") if isinstance(loaded.data, dict) else None
    if not isinstance(site, dict) or site.get("grid") is None:
        return []
    try:
        setting = GridSetting.model_validate(site["grid"])
    except ValidationError:
        return []  # the schema error is reported already
    table = shipped_grid_factors()
    if setting.factor is not None and setting.factor not in table:
        hint = did_you_mean(setting.factor, table) or f" (e.g. {SUGGESTED}; README: Carbon)"
        where = (*GRID_PATH, "factor") if isinstance(site.get("grid"), dict) else GRID_PATH
        return [loaded.issue(where, f"unknown grid factor '{setting.factor}'{hint}")]
    if setting.id is not None and setting.id in table:
        shipped = table[setting.id]
        _, own = setting.resolved()
        if (own.gas, own.kg_per_kwh, own.year) != (shipped.gas, shipped.kg_per_kwh, shipped.year):
            return [
                loaded.issue(
                    (*GRID_PATH, "id"),
                    f"'{setting.id}' is the id of a shipped factor ({shipped.kg_per_kwh} kg "
                    f"{shipped.gas.upper()}/kWh, {shipped.year}); give your own factor an id of its own",
                )
            ]
    return []
