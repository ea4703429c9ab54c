"""Benchmark: each stage of the night beside the library floor timed in the same process, and `trp run`
beside the single-process pipeline a programme analyst would write.

On a dirty national landing zone (the faults real extracts have), one process, every trust's newest extract:
- reading: `read_text` (decoding, RFC 4180 parsing, line numbers) against pyarrow's CSV reader on the same
  files, every column as text;
- validation: `pipeline.extracts.validation.validate` against Great Expectations used the plain way: one context for
  the process, each file's suite run at SUMMARY with the full reference lists, row detail where it failed;
- decisions: `decide_trust` against the solvers' own time within it (OR-Tools' min-cost flow, GLOP and
  CP-SAT, timed by wrapping their solve calls);
- writing: the trust's published and operational files as the run writes them (pseudonyms, formula-safe
  CSV, the workbook) against pyarrow writing the same tables as Parquet and CSV.
Then `trp run` as a subprocess (start-up and the Dask cluster included) against the analyst's reference in
one process: pandas' CSV reader, GX the plain way, the contract's split and a greedy allocation (each case
kept by its officer when on its side, else given to the least-loaded officer of its side, team first),
Parquet out. Targets: each stage within 1.5x of its floor; `trp run` at least 2x faster than the reference.
Run: `python benchmarks/bench_stages.py [--scale 1]`.
"""

from __future__ import annotations

import argparse
import heapq
import io
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from bench_run import GIB, timed_run  # noqa: E402

from pipeline.decisions.case_split import split_cases  # noqa: E402
from pipeline.decisions.engine import decide_trust  # noqa: E402
from pipeline.extracts.contract import FILES, typed_table
from pipeline.extracts.csv_text import FileRejected, read_text
from pipeline.extracts.reading import read_extract
from pipeline.extracts.validation import prepare, reference_params, suite_json, validate
from pipeline.outputs.operational import write_operational
from pipeline.policy import load_policy  # noqa: E402
from pipeline.publishing.datasets import stage_datasets
from pipeline.reference import load_reference  # noqa: E402
from pipeline.storage import Store  # noqa: E402
from pipeline.synthetic.landing import generate_landing

RUN_DATE = "2014-06-01"


def newest(landing: Path) -> dict[str, Path]:
    return {t.name: max(d for d in t.iterdir() if d.is_dir()) for t in sorted(landing.iterdir()) if t.is_dir()}


def reading(extracts: dict[str, Path]) -> dict:
    ours = floor = 0.0
    for folder in extracts.values():
        for kind, spec in FILES.items():
            path = folder / spec.name
            if not path.exists():
                continue
            raw = path.read_bytes()
            t = time.perf_counter()
            try:
                read_text(raw, kind)
            except FileRejected:
                pass
            ours += time.perf_counter() - t
            header = raw.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff").strip().split(",")
            t = time.perf_counter()
            try:
                pacsv.read_csv(
                    io.BytesIO(raw), convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header})
                )
            except pa.ArrowInvalid:
                pass
            floor += time.perf_counter() - t
    return {"ours_s": ours, "floor_s": floor}


def _texts(folder: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for kind, spec in FILES.items():
        if (folder / spec.name).exists():
            try:
                out[kind] = read_text((folder / spec.name).read_bytes(), kind).frame
            except FileRejected:
                pass
    return out


class PlainGX:
    """Great Expectations as its documentation shows it: one context, each suite run at SUMMARY, then the
    failed expectations again at COMPLETE for their rows."""

    def __init__(self) -> None:
        import great_expectations as gx

        self.gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = {"globally": False}
        source = self.context.data_sources.add_pandas("plain")
        self.batch_definitions = {
            k: source.add_dataframe_asset(k).add_batch_definition_whole_dataframe(k) for k in FILES
        }
        self.suites = {k: gx.ExpectationSuite(**{**suite_json(k), "name": k}) for k in FILES}

    def validate(self, kind: str, frame: pd.DataFrame, params: dict) -> int:
        batch = self.batch_definitions[kind].get_batch(batch_parameters={"dataframe": prepare(kind, frame)})
        result = batch.validate(self.suites[kind], result_format="SUMMARY", expectation_parameters=params)
        failed = [r.expectation_config for r in result.results if not r.success]
        if failed:
            again = self.gx.ExpectationSuite(
                name=f"{kind}-failed",
                expectations=[{"type": c.type, "kwargs": c.kwargs, "meta": c.meta} for c in failed],
            )
            rows = batch.validate(again, result_format="COMPLETE", expectation_parameters=params)
            return sum(len(r.result.get("unexpected_index_list") or []) for r in rows.results)
        return 0


def validation(extracts: dict[str, Path]) -> dict:
    plain = PlainGX()
    ours = floor = 0.0
    for trust, folder in extracts.items():
        texts = _texts(folder)
        params_ours: dict = {"trust": [trust]}
        params_plain: dict = {"trust": [trust]}
        for kind, text in texts.items():
            t = time.perf_counter()
            validate(kind, text, params_ours)
            ours += time.perf_counter() - t
            t = time.perf_counter()
            plain.validate(kind, text, params_plain)
            floor += time.perf_counter() - t
            params_ours.update(reference_params(kind, text))
            params_plain.update(reference_params(kind, text))
    return {"ours_s": ours, "floor_s": floor}


class SolverClock:
    """The seconds OR-Tools' solve calls take, however the alignment reaches them."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self):
        from ortools.linear_solver.python import model_builder_helper as mbh
        from ortools.sat.python import cp_model

        from pipeline.decisions.alignment import relaxation

        clock = self

        def timed(base, method):
            def solve(self, *args, **kwargs):
                t = time.perf_counter()
                try:
                    return getattr(super(cls, self), method)(*args, **kwargs)
                finally:
                    clock.seconds += time.perf_counter() - t

            cls = type(f"Timed{base.__name__}", (base,), {method: solve})
            return cls

        self.saved = [
            (relaxation, "SimpleMinCostFlow", relaxation.SimpleMinCostFlow),
            (mbh, "ModelSolverHelper", mbh.ModelSolverHelper),
            (cp_model, "CpSolver", cp_model.CpSolver),
        ]
        relaxation.SimpleMinCostFlow = timed(relaxation.SimpleMinCostFlow, "solve")
        mbh.ModelSolverHelper = timed(mbh.ModelSolverHelper, "solve")
        cp_model.CpSolver = timed(cp_model.CpSolver, "solve")
        return self

    def __exit__(self, *exc) -> None:
        for module, name, value in self.saved:
            setattr(module, name, value)


def decisions_and_writing(extracts: dict[str, Path], scratch: Path) -> tuple[dict, dict]:
    reference, policy = load_reference(), load_policy()
    decide = write = write_floor = 0.0
    landing = Store(str(next(iter(extracts.values())).parent.parent))
    with SolverClock() as solvers:
        for trust, folder in extracts.items():
            try:
                ex = read_extract(landing, trust, folder.name)
            except FileRejected:
                continue
            typed = {k: t.drop_columns(["_line"]).to_pandas() for k, t in ex.typed.items()}
            nps, crc = reference.units_of(trust)
            t = time.perf_counter()
            files = [typed[k] for k in ("staff", "cases", "retention_requests", "appeals")]
            d = decide_trust(*files, policy, nps, crc, pd.Timestamp(ex.date), run_date=pd.Timestamp(RUN_DATE))
            decide += time.perf_counter() - t
            out = Store(str(scratch / "out"))
            t = time.perf_counter()
            write_operational(out, ("ops", trust, RUN_DATE), d, typed)
            stage_datasets(out, "bench", trust, RUN_DATE, d, b"benchmark-key", policy.units_per_point)
            write += time.perf_counter() - t
            t = time.perf_counter()
            for _, df in (
                ("staff", d.staff_assignment),
                ("cases", d.case_alignment),
                ("load", d.caseload),
                ("balance", d.workforce_balance),
                ("retention", d.retention_decisions),
            ):
                table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
                pq.write_table(table, io.BytesIO())
                pacsv.write_csv(table, io.BytesIO())
            write_floor += time.perf_counter() - t
    return ({"ours_s": decide, "floor_s": solvers.seconds}, {"ours_s": write, "floor_s": write_floor})


def greedy(split: pd.DataFrame, staff: pd.DataFrame) -> pd.Series:
    """Each case kept by its officer when on its side, else to the least-loaded officer of its side (in its
    team when there is one), heaviest cases first."""
    side_of = dict(zip(staff["staff_code"], staff["side"]))
    team_of = dict(zip(staff["staff_code"], staff["team_code"]))
    load = defaultdict(float)
    heaps: dict[tuple, list] = defaultdict(list)
    for code in staff["staff_code"]:
        for key in ((side_of[code], team_of[code]), (side_of[code], None)):
            heaps[key].append((0.0, code))
    om = []
    for case in split.sort_values("weight", ascending=False, kind="stable").itertuples():
        current = case.om_staff_code
        if isinstance(current, str) and side_of.get(current) == case.side:
            pick = current
        else:
            heap = heaps.get((case.side, case.team_code)) or heaps.get((case.side, None)) or []
            while heap and heap[0][0] != load[heap[0][1]]:  # stale entries
                heapq.heappop(heap)
            pick = heap[0][1] if heap else None
        if pick is not None:
            load[pick] += case.weight
            for key in ((side_of[pick], team_of[pick]), (side_of[pick], None)):
                heapq.heappush(heaps[key], (load[pick], pick))
        om.append(pick)
    return pd.Series(om)


def analyst_reference(extracts: dict[str, Path], scratch: Path) -> float:
    """The single-process pipeline: pandas, plain GX, the split, a greedy allocation, Parquet."""
    policy = load_policy()
    t0 = time.perf_counter()
    plain = PlainGX()
    for trust, folder in extracts.items():
        texts = {}
        for kind, spec in FILES.items():
            if (folder / spec.name).exists():
                texts[kind] = pd.read_csv(
                    folder / spec.name, dtype=str, keep_default_na=False, encoding_errors="replace"
                )
        if not {"staff", "cases"} <= set(texts) or "grade" not in texts["staff"]:
            continue
        params: dict = {"trust": [trust]}
        for kind, text in texts.items():
            plain.validate(kind, text, params)
            params.update(reference_params(kind, text))
        cases = typed_table(
            "cases",
            pa.Table.from_pandas(texts["cases"], preserve_index=False).select(
                [c for c in texts["cases"].columns if c in FILES["cases"].required + FILES["cases"].optional]
            ),
        )
        cases = cases.to_pandas()
        split = split_cases(cases, policy)
        points = split.pivot_table(index="om_staff_code", columns="side", values="weight", aggfunc="sum", fill_value=0)
        nps = points.get("NPS", pd.Series(dtype=float)).reindex(texts["staff"]["staff_code"]).fillna(0).to_numpy()
        crc = points.get("CRC", pd.Series(dtype=float)).reindex(texts["staff"]["staff_code"]).fillna(0).to_numpy()
        staff = texts["staff"].assign(side=["NPS" if a > b else "CRC" for a, b in zip(nps, crc)])
        split["om"] = greedy(split, staff).to_numpy()
        split.to_parquet(scratch / f"{trust}.parquet")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="trp-stages-") as tmp:
        root = Path(tmp)
        generate_landing(str(root / "landing"), args.scale, args.seed, dirty=True)
        extracts = newest(root / "landing")
        from pipeline.extracts.validation import warm_up

        warm_up()
        stages = {"reading": reading(extracts), "validation": validation(extracts)}
        stages["decisions"], stages["writing"] = decisions_and_writing(extracts, root)
        for name, s in stages.items():
            s["x_floor"] = round(s["ours_s"] / s["floor_s"], 2)
            s.update({k: round(v, 2) for k, v in s.items() if k.endswith("_s")})
            print(json.dumps({"stage": name, **s, "within_1_5x": s["x_floor"] <= 1.5}), flush=True)
        (root / "ref").mkdir()
        reference = analyst_reference(extracts, root / "ref")
        wall, peak, code = timed_run(root / "landing", root / "run")
        print(
            json.dumps(
                {
                    "trp_run_wall_s": round(wall, 2),
                    "exit_code": code,
                    "peak_gib": round(peak / GIB, 2),
                    "analyst_reference_s": round(reference, 2),
                    "x_faster": round(reference / wall, 2),
                    "at_least_2x": reference / wall >= 2,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
