"""A linear or mixed-integer model built as arrays and handed to OR-Tools in one call.

Building through pywraplp costs one Python-to-C++ call per coefficient, which was most of the alignment's
solve time; here terms are collected in lists and passed as one sparse matrix (OR-Tools' model builder).
"""
from __future__ import annotations

import math

import numpy as np
from ortools.linear_solver.python import model_builder_helper as mbh

INF = math.inf


class SparseModel:
    """Variables and rows in creation order; minimised."""

    def __init__(self) -> None:
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.cost: list[float] = []
        self.integer: list[bool] = []
        self.row_lb: list[float] = []
        self.row_ub: list[float] = []
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []

    def var(self, lb: float, ub: float, cost: float, integer: bool = False) -> int:
        self.lb.append(lb)
        self.ub.append(ub)
        self.cost.append(cost)
        self.integer.append(integer)
        return len(self.lb) - 1

    def row(self, lb: float, ub: float, terms: list[tuple[int, float]]) -> None:
        r = len(self.row_lb)
        self.row_lb.append(lb)
        self.row_ub.append(ub)
        for v, c in terms:
            self.rows.append(r)
            self.cols.append(v)
            self.vals.append(c)

    def model(self) -> mbh.ModelBuilderHelper:
        """The model for OR-Tools, as its sparse-matrix fill would make it (each row's terms by variable,
        repeats summed) without SciPy, whose import costs each worker 0.15 s for a few small sides."""
        model = mbh.ModelBuilderHelper()
        n = len(self.lb)
        model.add_var_array_with_bounds(np.asarray(self.lb, dtype=float), np.asarray(self.ub, dtype=float),
                                        np.asarray(self.integer, dtype=bool), "")
        model.set_objective_coefficients(list(range(n)), [float(c) for c in self.cost])
        for lb, ub in zip(self.row_lb, self.row_ub):
            r = model.add_linear_constraint()
            model.set_constraint_lower_bound(r, lb)
            model.set_constraint_upper_bound(r, ub)
        if not self.rows:
            return model
        rows, cols = np.asarray(self.rows, dtype=np.int64), np.asarray(self.cols, dtype=np.int64)
        order = np.lexsort((cols, rows))
        rows, cols, vals = rows[order], cols[order], np.asarray(self.vals, dtype=float)[order]
        first = np.flatnonzero(np.r_[True, (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])])
        for r, c, v in zip(rows[first].tolist(), cols[first].tolist(), np.add.reduceat(vals, first).tolist()):
            model.set_constraint_coefficient(r, c, v)
        return model

    def solve(self, solver_name: str, parameters: str = "") -> tuple[np.ndarray, float] | None:
        """Variable values and objective, or None when the solver found no feasible plan."""
        model = self.model()
        solver = mbh.ModelSolverHelper(solver_name)
        if not solver.solver_is_supported():
            raise RuntimeError(f"solver {solver_name!r} is not available in this OR-Tools build")
        if parameters:
            solver.set_solver_specific_parameters(parameters)
        solver.solve(model)
        if solver.status() not in (mbh.SolveStatus.OPTIMAL, mbh.SolveStatus.FEASIBLE):
            return None
        return np.asarray(solver.variable_values(), dtype=float), solver.objective_value()

