"""The README in each trust's operational folder: what the files are and how to read their codes."""

from __future__ import annotations

from pipeline.domain import OUTCOME_WORDS, REASON_WORDS

TRUST_README = "README.txt"


def trust_readme(trust: str, run_date: str) -> str:
    reasons = "\n".join(f"  {code:<16} {words}" for code, words in REASON_WORDS.items())
    outcomes = "\n".join(f"  {code:<16} {words}" for code, words in OUTCOME_WORDS.items())
    return f"""Transition pipeline: {trust}, run of {run_date}

These files are for {trust} only. They hold real identifiers (CRNs, staff codes, names): handle them as
OFFICIAL-SENSITIVE personal data and do not pass them on. Text cells that would start with = + - @, a tab or a
carriage return begin with ' so that a spreadsheet shows them as text (plain numbers such as -12.5 are left as
they are).

The plan holds from night to night: a person keeps the side first given to them (assigned_on) unless an appeal
is upheld or they move into a role that belongs to the other side; a planned move stays on the transfer list,
with the date it was first planned (planned_on), until your extract shows the case with its new officer.

staff_assignment.csv     every person in your staff extract: grade, role, FTE, side (NPS or CRC), unit, reason,
                         guaranteed (Y: in post by the cut-off date, so the job is guaranteed) and assigned_on
                         (the night the side was first given).
case_alignment.csv       every case aligned: side, the rule that decided it, case class, current_om (as your
                         extract shows it), om (the officer it should have), moved (Y/N), reason, planned_on
                         (the night a move or allocation was first planned) and replanned (Y: planned again
                         because the officer first planned can no longer take it).
transfer_list.csv        the moves still to make, oldest first: the case, its side, class and RoSH, its team,
                         the current and the new officer with their names and teams, the reason as a code and
                         in words, planned_on, days_outstanding and replanned. Make the move in nDelius and it
                         leaves the list the next night.
transfer_list.xlsx       the same moves as a workbook, one sheet per team, with filters.
retention_decisions.csv  each retention request as you made it, its status and decision note, the case's
                         officer and reason after alignment, and the outcome, as a code and in words.
quarantine.csv           rows and files held back: file, line (as in your file, header = line 1), column,
                         rule, message and value. Fix them in your next extract.
warnings.csv             findings that did not hold anything back (for example a CRN also in another trust).
validation_report.html   the validation of your extract: every rule checked, counts, sample values and what
                         to do about each finding.

Staff reasons:
  APPEAL_UPHELD    an appeal for this side was upheld
  FIXED_ROLE       the role belongs wholly to this side (court, approved premises, victim liaison: NPS;
                   programmes, unpaid work, interventions: CRC)
  PREFERENCE       got the side they asked for
  ALIGNMENT        no preference: went where their caseload points
  TARGET_FULL      their choice was full for their grade: went to the other side

Case reasons:
{reasons}

Retention outcomes:
{outcomes}

If your newest extract was rejected, the lists were made from your last good extract; the report says why.
What each file you upload must hold: the extract contract (/contract on the upload service).
"""
