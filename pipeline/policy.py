"""The decision policy: loaded and checked once, then passed to every decision as a value."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from fractions import Fraction
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.domain import CASE_CLASSES, CASE_RULES, GRADES, REDUCTION_REASONS, REDUCTION_WITHOUT_DEFAULT, ROLES, SIDES

DEFAULT_POLICY = "policy-v1.yaml"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CaseSplitPolicy(_Frozen):
    rule_order: tuple[Literal[CASE_RULES], ...]  # type: ignore[valid-type]
    enabled: dict[Literal[CASE_RULES], bool]  # type: ignore[valid-type]
    mappa_min_category: int = Field(ge=1, le=4)
    rosh_high_levels: tuple[str, ...]
    public_interest_registers: tuple[str, ...]

    @field_validator("rule_order")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError("rule_order lists a rule twice")
        return v

    def active_rules(self) -> tuple[str, ...]:
        return tuple(r for r in self.rule_order if self.enabled.get(r, False))


class EligibilityRule(_Frozen):
    grades: tuple[str, ...]
    roles: tuple[str, ...]

    @model_validator(mode="after")
    def _known(self) -> EligibilityRule:
        for g in self.grades:
            if g != "*" and g not in GRADES:
                raise ValueError(f"unknown grade {g!r}")
        for r in self.roles:
            if r != "*" and r not in ROLES:
                raise ValueError(f"unknown role {r!r}")
        return self

    def admits(self, grade: str, role: str) -> bool:
        return ("*" in self.grades or grade in self.grades) and ("*" in self.roles or role in self.roles)


class CrcComplexPolicy(_Frozen):
    rsr_min: float
    ogrs_min: float
    registers: tuple[str, ...]


class CaseClassPolicy(_Frozen):
    capacity_points_per_fte: int = Field(gt=0)
    weights: dict[Literal[CASE_CLASSES], str]  # type: ignore[valid-type]
    crc_complex: CrcComplexPolicy
    eligibility: dict[Literal[CASE_CLASSES], tuple[EligibilityRule, ...]]  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _complete(self) -> CaseClassPolicy:
        for name, table in (("weights", self.weights), ("eligibility", self.eligibility)):
            missing = set(CASE_CLASSES) - set(table)
            if missing:
                raise ValueError(f"{name} lacks case classes {sorted(missing)}")
        for k, w in self.weights.items():
            if Fraction(w) <= 0:
                raise ValueError(f"weight of {k} must be positive")
        return self

    def weight(self, case_class: str) -> Fraction:
        return Fraction(self.weights[case_class])

    def eligible(self, case_class: str, grade: str, role: str) -> bool:
        return any(rule.admits(grade, role) for rule in self.eligibility[case_class])


class StaffSplitPolicy(_Frozen):
    fixed_roles: dict[str, Literal[SIDES]]  # type: ignore[valid-type]
    workload_grades: tuple[str, ...]
    case_holding_role: str
    nps_alignment_threshold: float = Field(ge=0, le=1)
    room_fraction_of_fte: float = Field(ge=0, le=1)
    fallback_nps_share: float = Field(ge=0, le=1)
    hold_sides: bool = True

    @model_validator(mode="after")
    def _known(self) -> StaffSplitPolicy:
        bad = [r for r in [*self.fixed_roles, self.case_holding_role] if r not in ROLES]
        bad += [g for g in self.workload_grades if g not in GRADES]
        if bad:
            raise ValueError(f"unknown grades or roles {bad}")
        return self


class SpreadBand(_Frozen):
    from_pct: float = Field(ge=0)
    cost: int = Field(ge=0)


class AlignmentPolicy(_Frozen):
    capacity_limit_pct: float = Field(gt=0)
    cost_overflow_per_point: int = Field(gt=0)
    cost_move: int = Field(gt=0)
    cost_team_change: int = Field(ge=0)
    spread_bands: tuple[SpreadBand, ...]
    cost_ineligible: int = Field(gt=0)
    exact_work_limit: float = Field(ge=0)
    exact_work_per_1000_cases: float = Field(ge=0)
    exact_work_ceiling: float = Field(ge=0)
    optimality_gap: float = Field(ge=0, lt=1)
    exchange_rounds: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> AlignmentPolicy:
        if not (self.cost_ineligible > self.cost_overflow_per_point > self.cost_move > self.cost_team_change):
            raise ValueError("costs must be strictly ordered: ineligible > overflow > move > team change")
        if list(self.spread_bands) != sorted(self.spread_bands, key=lambda b: b.from_pct):
            raise ValueError("spread_bands must be in ascending from_pct")
        return self


class BalancePolicy(_Frozen):
    case_holding_grades: tuple[str, ...]


class Allowance(_Frozen):
    """A caseload reduction's default size, when a reductions.csv row gives neither hours nor percent."""

    percent: float | None = Field(default=None, gt=0, le=100)
    hours: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one(self) -> Allowance:
        if (self.percent is None) == (self.hours is None):
            raise ValueError("give exactly one of percent or hours")
        return self


class CapacityPolicy(_Frozen):
    """How an officer's capacity is counted: `fte` (points per FTE x fte) or `hours` (as HMPPS counts it:
    contracted hours less the caseload reductions active on the run date)."""

    model: Literal["fte", "hours"] = "fte"
    full_time_hours: float = Field(default=37.0, gt=0, le=60)
    allowances: dict[Literal[REDUCTION_REASONS], Allowance]  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _complete(self) -> CapacityPolicy:
        missing = set(REDUCTION_REASONS) - {REDUCTION_WITHOUT_DEFAULT} - set(self.allowances)
        if missing:
            raise ValueError(f"allowances lacks reduction reasons {sorted(missing)}")
        if REDUCTION_WITHOUT_DEFAULT in self.allowances:
            raise ValueError(f"{REDUCTION_WITHOUT_DEFAULT} has no default: each such reduction gives its own size")
        return self


class ExtractsPolicy(_Frozen):
    """What an upload may be before it is even parsed, and how much of it may be held back."""

    max_columns: int = Field(default=200, gt=0)
    max_line_bytes: int = Field(default=1 << 20, gt=0)
    max_held_back_share: float = Field(default=0.2, gt=0, le=1)
    held_back_share_files: tuple[Literal["staff", "cases", "retention_requests", "appeals", "reductions"], ...] = (
        "staff",
        "cases",
    )
    held_back_share_min_rows: int = Field(default=50, ge=1)


class RetentionPolicy(_Frozen):
    """How long `trp prune` keeps what is not the current run of a date, counted back from the newest run."""

    superseded_runs_days: int = Field(default=90, ge=0)
    operational_days: int = Field(default=400, ge=0)


class PublishingPolicy(_Frozen):
    suppression_threshold: int = Field(default=10, ge=1)


class Policy(_Frozen):
    version: str
    cutoff_date: dt.date
    case_split: CaseSplitPolicy
    case_classes: CaseClassPolicy
    staff_split: StaffSplitPolicy
    alignment: AlignmentPolicy
    balance: BalancePolicy
    capacity: CapacityPolicy
    extracts: ExtractsPolicy = ExtractsPolicy()
    retention: RetentionPolicy = RetentionPolicy()
    publishing: PublishingPolicy = PublishingPolicy()
    sha256: str = ""

    @cached_property
    def units_per_point(self) -> int:
        """Smallest integer unit in which every case weight is whole (lcm of the weight denominators)."""
        return math.lcm(*(self.case_classes.weight(k).denominator for k in CASE_CLASSES))

    def weight_units(self, case_class: str) -> int:
        return int(self.case_classes.weight(case_class) * self.units_per_point)

    def manifest_entry(self) -> dict[str, str]:
        return {"version": self.version, "sha256": self.sha256}


class PolicyError(ValueError):
    """A policy file that cannot be used, said in one line: which file, which key, what is wrong."""


def load_policy(path: str | Path | None = None) -> Policy:
    """Load and validate a policy file (the packaged v1 policy when no path is given)."""
    data, raw = policy_source(path)
    name = str(path) if path is not None else DEFAULT_POLICY
    return checked_policy(data, hashlib.sha256(raw).hexdigest(), f"policy file {name}")


def policy_source(path: str | Path | None = None) -> tuple[dict, bytes]:
    """A policy file's settings as a mapping, and its bytes (the packaged v1 policy when no path is given)."""
    name = str(path) if path is not None else DEFAULT_POLICY
    try:
        raw = (
            resources.files("pipeline.data").joinpath(DEFAULT_POLICY).read_bytes()
            if path is None
            else Path(path).read_bytes()
        )
    except FileNotFoundError:
        raise PolicyError(f"policy file {name} not found") from None
    except OSError as exc:
        raise PolicyError(f"policy file {name} cannot be read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise PolicyError(f"policy file {name} is not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"policy file {name} is not a mapping of settings")
    return data, raw


def checked_policy(data: dict, sha256: str, name: str) -> Policy:
    """A policy from its settings, checked; PolicyError names `name` (what the settings came from) and the
    first keys that are wrong."""
    try:
        return Policy.model_validate({**data, "sha256": sha256})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in exc.errors()[:5])
        more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise PolicyError(f"{name}: {problems}{more}") from exc
