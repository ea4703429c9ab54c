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

    def solve(self, solver_name: str, parameters: str = "") -> tuple[np.ndarray, float] | None:
        """Variable values and objective, or None when the solver found no feasible plan."""
        from scipy.sparse import csr_matrix  # only small sides are solved here: keep it out of start-up

        n = len(self.lb)
        matrix = csr_matrix((np.asarray(self.vals, dtype=float), (np.asarray(self.rows, dtype=np.int64),
                             np.asarray(self.cols, dtype=np.int64))), shape=(len(self.row_lb), n))
        model = mbh.ModelBuilderHelper()
        model.fill_model_from_sparse_data(
            np.asarray(self.lb, dtype=float), np.asarray(self.ub, dtype=float), np.asarray(self.cost, dtype=float),
            np.asarray(self.row_lb, dtype=float), np.asarray(self.row_ub, dtype=float), matrix)
        for i in np.flatnonzero(self.integer):
            model.set_var_integrality(int(i), True)
        solver = mbh.ModelSolverHelper(solver_name)
        if not solver.solver_is_supported():
            raise RuntimeError(f"solver {solver_name!r} is not available in this OR-Tools build")
        if parameters:
            solver.set_solver_specific_parameters(parameters)
        solver.solve(model)
        if solver.status() not in (mbh.SolveStatus.OPTIMAL, mbh.SolveStatus.FEASIBLE):
            return None
        return np.asarray(solver.variable_values(), dtype=float), solver.objective_value()

