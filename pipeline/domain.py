"""Names of the domain, shared by every module: sides, grades, roles, case classes and reason codes."""
from __future__ import annotations

NPS, CRC = "NPS", "CRC"
SIDES = (NPS, CRC)

GRADES = ("PO", "PQIP", "PSO", "SPO", "ACO", "ADMIN", "UPW_SUP")
ROLES = (
    "OFFENDER_MANAGEMENT", "COURT", "APPROVED_PREMISES", "VICTIM_LIAISON", "PROGRAMMES",
    "UNPAID_WORK", "INTERVENTIONS", "CORPORATE", "MANAGEMENT",
)
CONTRACTS = ("PERMANENT", "FIXED_TERM", "SESSIONAL", "AGENCY")
CASE_TYPES = ("COMMUNITY", "LICENCE", "CUSTODY")
ROSH_LEVELS = ("LOW", "MEDIUM", "HIGH", "VERY_HIGH")

CASE_RULES = ("MAPPA", "ROSH_HIGH", "PUBLIC_INTEREST", "DEPORT", "ROSH_UNASSESSED", "CUSTODY")
DEFAULT_CRC = "DEFAULT_CRC"
CASE_CLASSES = ("NPS_HIGH", "NPS_STANDARD", "CRC_UPW", "CRC_COMPLEX", "CRC_STANDARD")
CLASS_SIDE = {c: c.split("_", 1)[0] for c in CASE_CLASSES}

RETENTION_REASONS = ("RELATIONSHIP", "RISK_OF_HARM", "VULNERABILITY", "MID_INTERVENTION", "OTHER")
RETENTION_STATUSES = ("PENDING", "ACCEPTED", "REJECTED")
APPEAL_STATUSES = ("PENDING", "UPHELD", "DISMISSED")

# Staff split reasons.
APPEAL_UPHELD, FIXED_ROLE, PREFERENCE, ALIGNMENT, TARGET_FULL = (
    "APPEAL_UPHELD", "FIXED_ROLE", "PREFERENCE", "ALIGNMENT", "TARGET_FULL")

# Case alignment reasons; the four MOVED_* are moves, in the order the first that applies wins.
KEPT, RETAINED, ALLOCATED = "KEPT", "RETAINED", "ALLOCATED"
MOVED_LEFT, MOVED_SIDE, MOVED_GRADE, MOVED_CAPACITY = (
    "MOVED_LEFT", "MOVED_SIDE", "MOVED_GRADE", "MOVED_CAPACITY")
MOVE_REASONS = (MOVED_LEFT, MOVED_SIDE, MOVED_GRADE, MOVED_CAPACITY)

# Outcome of a retention request, as told to the practitioner.
RETENTION_HONOURED = "HONOURED"          # the case stays with the OM who asked
RETENTION_NOT_NEEDED = "KEPT_ANYWAY"     # rejected, but the case stayed with its OM for other reasons
RETENTION_REJECTED_MOVED = "MOVED"       # rejected, and the case moved
RETENTION_OM_LEFT = "OM_LEFT"            # could not be honoured: the OM is no longer in post

# How a side's alignment was solved, weakest guarantee first (see alignment.SolveReport).
LP_FLOW, LP_INTEGRAL, MIP = "LP_FLOW", "LP_INTEGRAL", "MIP"
OTHER_SIDE, NO_STAFF = "OTHER_SIDE", "NO_STAFF"
