"""Officers, classes and teams numbered so that numbers sort as their names do, and the cases as arrays of
those numbers: the representation every model of the alignment is built from."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.decisions.capacity import counted
from pipeline.domain import SIDES
from pipeline.policy import Policy


def _class_names(policy: Policy) -> tuple[str, ...]:
    """The case classes in name order: a class's number is its place here."""
    return tuple(sorted(policy.case_classes.weights))


@dataclass(frozen=True)
class Roster:
    """The officers as arrays in code order, with a last sentinel row standing for 'no officer'; their
    classes as bits (bit i: class_names[i], names in order) and teams as positions in `teams` (codes in order)."""

    codes: pa.Array
    side: np.ndarray
    team: np.ndarray  # -1 in the sentinel row
    grade: np.ndarray
    role: np.ndarray
    classes: np.ndarray
    limits: np.ndarray  # per officer: capacity, then each spread band's threshold (units)
    teams: pa.Array
    class_names: tuple[str, ...]
    weight_units: np.ndarray  # per class

    @classmethod
    def of_staff(
        cls, staff: pd.DataFrame, policy: Policy, as_of: pd.Timestamp, case_teams: pa.Array | None = None
    ) -> Roster:
        """Every officer still in post on `as_of` (a code listed twice: its last row), the teams numbered
        over theirs and `case_teams`."""
        active = np.flatnonzero((staff["leaving_date"].isna() | (staff["leaving_date"] > as_of)).to_numpy())
        codes = pa.array(staff["staff_code"]).take(active)
        order = pc.sort_indices(codes).to_numpy()
        ordered = codes.take(order)
        last = np.append(pc.not_equal(ordered[1:], ordered[:-1]).to_numpy(zero_copy_only=False), True)
        rows = active[order[last]]
        grade, role = staff["grade"].to_numpy(dtype=object)[rows], staff["role"].to_numpy(dtype=object)[rows]
        cc, al = policy.case_classes, policy.alignment
        full = counted(staff, policy)["capacity_points"].to_numpy(dtype=np.float64)[rows] * policy.units_per_point
        limits = np.floor(
            np.column_stack(
                [full * pct / 100 + 1e-9 for pct in (al.capacity_limit_pct, *(b.from_pct for b in al.spread_bands))]
            ).reshape(len(full), 1 + len(al.spread_bands))
        ).astype(np.int64)
        bits_of = {
            pair: sum(1 << i for i, k in enumerate(_class_names(policy)) if cc.eligible(k, *pair))
            for pair in set(zip(grade, role))
        }
        bits = np.fromiter(map(bits_of.__getitem__, zip(grade, role)), dtype=np.int64, count=len(grade))
        return cls._of(
            ordered.filter(pa.array(last)),
            staff["side"].to_numpy(dtype=object)[rows],
            pa.array(staff["team_code"]).take(rows),
            grade,
            role,
            limits,
            bits,
            policy,
            case_teams,
        )

    @classmethod
    def _of(
        cls,
        codes: pa.Array,
        side: np.ndarray,
        teams: pa.Array,
        grade: np.ndarray,
        role: np.ndarray,
        limits: np.ndarray,
        bits: np.ndarray,
        policy: Policy,
        case_teams: pa.Array | None,
    ) -> Roster:
        known = teams if case_teams is None else pa.chunked_array([teams, case_teams.cast(teams.type)])
        vocabulary = pc.unique(known).drop_null() if len(known) else teams
        vocabulary = vocabulary.take(pc.sort_indices(vocabulary))
        team = pc.fill_null(pc.index_in(teams, value_set=vocabulary), -1).to_numpy(zero_copy_only=False)
        return cls(
            codes=codes,
            side=np.append(side, None),
            team=np.append(team, -1).astype(np.int64),
            grade=grade,
            role=role,
            classes=np.append(bits, 0).astype(np.int64),
            limits=limits,
            teams=vocabulary,
            class_names=_class_names(policy),
            weight_units=np.array([policy.weight_units(k) for k in _class_names(policy)], dtype=np.int64),
        )

    @property
    def none(self) -> int:
        return len(self.codes)

    @cached_property
    def names(self) -> np.ndarray:
        return self.codes.to_numpy(zero_copy_only=False)

    def find(self, codes: pd.Series) -> np.ndarray:
        """Row of each officer code; the sentinel row for a missing or unknown code."""
        rows = pd.Index(self.codes).get_indexer(codes)
        return np.where(rows < 0, self.none, rows)

    def team_of(self, codes: pd.Series) -> np.ndarray:
        """Each team code's position in `teams` (-1: missing)."""
        return pc.fill_null(pc.index_in(pa.array(codes), value_set=self.teams), -1).to_numpy(zero_copy_only=False)

    def same_side(self, row: np.ndarray, on_side: dict[str, np.ndarray]) -> np.ndarray:
        """Whether the officer at each row is on the side `on_side` marks for that case."""
        out = np.zeros(len(row), dtype=bool)
        for s, mine in on_side.items():
            out |= mine & (self.side == s)[row]
        return out

    def side_classes(self, side: str) -> int:
        return int(np.bitwise_or.reduce(self.classes[:-1][self.side[:-1] == side], initial=0))


@dataclass(frozen=True)
class CaseArrays:
    """One trust's cases (crn order) as the numbers the alignment reads, each made once."""

    row: np.ndarray  # the roster row of the OM the case has now (the sentinel when missing or unknown)
    missing: np.ndarray  # no OM at all
    on_side: dict[str, np.ndarray]
    k_code: np.ndarray  # position in Roster.class_names
    t_code: np.ndarray  # position in Roster.teams
    wunits: np.ndarray

    @classmethod
    def of(cls, cases: pd.DataFrame, current: pd.Series, roster: Roster) -> CaseArrays:
        return cls(
            row=roster.find(current),
            missing=current.isna().to_numpy(),
            on_side={s: cases["side"].eq(s).to_numpy(dtype=bool, na_value=False) for s in SIDES},
            k_code=pd.Index(roster.class_names).get_indexer(cases["case_class"]),
            t_code=roster.team_of(cases["team_code"]),
            wunits=cases["weight_units"].to_numpy(),
        )

    @cached_property
    def bits(self) -> np.ndarray:
        """The case's class as its bit in Roster.classes."""
        return np.left_shift(np.int64(1), self.k_code)


def group_rows(rows: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`rows` grouped by integer `key`, groups in key order, rows ascending within each group: each group's
    first row, the rows one group after another, and where each group starts (and the last ends)."""
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(ordered) else np.zeros(0, np.int64)
    grouped = rows[order]
    return grouped[starts], grouped, np.append(starts, len(grouped))


def _pick(starts: np.ndarray, rows: np.ndarray, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The `chosen` groups (a mask) of grouped `rows`: their rows and starts."""
    sizes = np.diff(starts)[chosen]
    return rows[np.repeat(chosen, np.diff(starts))], np.append(0, np.cumsum(sizes))
