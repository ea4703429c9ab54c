"""Reference data: the 35 trusts with their CRC and NPS division, shipped in the package."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Reference:
    trusts: pd.DataFrame
    units: pd.DataFrame

    @property
    def trust_codes(self) -> list[str]:
        return list(self.trusts["trust_code"])

    def units_of(self, trust_code: str) -> tuple[str, str]:
        """(NPS division, CRC code) of a trust."""
        row = self.trusts.loc[self.trusts["trust_code"] == trust_code].iloc[0]
        return row["nps_division"], row["crc_code"]


def load_reference(trusts_file: str | Path | None = None) -> Reference:
    pkg = resources.files("pipeline.data")
    trusts = pd.read_csv(trusts_file or pkg.joinpath("trusts.csv"), dtype=str)
    units = pd.read_csv(pkg.joinpath("units.csv"), dtype=str)
    unknown = set(trusts["nps_division"]) | set(trusts["crc_code"])
    unknown -= set(units["unit_code"])
    if unknown or trusts["trust_code"].duplicated().any():
        raise ValueError(f"trust reference is inconsistent (unknown units {sorted(unknown)} or duplicate codes)")
    return Reference(trusts.sort_values("trust_code").reset_index(drop=True), units)
