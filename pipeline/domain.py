"""Names of the domain, shared by every module: sides, grades, roles, case classes and reason codes."""

from __future__ import annotations

NPS, CRC = "NPS", "CRC"
SIDES = (NPS, CRC)

GRADES = ("PO", "PQIP", "PSO", "SPO", "ACO", "ADMIN", "UPW_SUP")
ROLES = (
    "OFFENDER_MANAGEMENT",
    "COURT",
    "APPROVED_PREMISES",
    "VICTIM_LIAISON",
    "PROGRAMMES",
    "UNPAID_WORK",
    "INTERVENTIONS",
    "CORPORATE",
    "MANAGEMENT",
)
CONTRACTS = ("PERMANENT", "FIXED_TERM", "SESSIONAL", "AGENCY")
CASE_TYPES = ("COMMUNITY", "LICENCE", "CUSTODY")
ROSH_LEVELS = ("LOW", "MEDIUM", "HIGH", "VERY_HIGH")

HMPPS_WARNING = 1.10  # the utilisation HMPPS warns at: shown beside the policy's own capacity line

CASE_RULES = ("MAPPA", "ROSH_HIGH", "PUBLIC_INTEREST", "DEPORT", "ROSH_UNASSESSED", "CUSTODY")
DEFAULT_CRC = "DEFAULT_CRC"
CASE_CLASSES = ("NPS_HIGH", "NPS_STANDARD", "CRC_UPW", "CRC_COMPLEX", "CRC_STANDARD")
CLASS_SIDE = {c: c.split("_", 1)[0] for c in CASE_CLASSES}

RETENTION_REASONS = ("RELATIONSHIP", "RISK_OF_HARM", "VULNERABILITY", "MID_INTERVENTION", "OTHER")
RETENTION_STATUSES = ("PENDING", "ACCEPTED", "REJECTED")
APPEAL_STATUSES = ("PENDING", "UPHELD", "DISMISSED")
# Why an officer's caseload is reduced (reductions.csv); the policy gives each but OTHER a default allowance.
REDUCTION_REASONS = (
    "PQIP_YEAR_1",
    "PQIP_YEAR_2",
    "NEWLY_QUALIFIED",
    "TRADE_UNION",
    "SICKNESS",
    "PHASED_RETURN",
    "OTHER",
)
REDUCTION_WITHOUT_DEFAULT = "OTHER"  # a reduction of this reason must give its hours or percent

# Staff split reasons.
APPEAL_UPHELD, FIXED_ROLE, PREFERENCE, ALIGNMENT, TARGET_FULL = (
    "APPEAL_UPHELD",
    "FIXED_ROLE",
    "PREFERENCE",
    "ALIGNMENT",
    "TARGET_FULL",
)

# Case alignment reasons; the four MOVED_* are moves, in the order the first that applies wins.
KEPT, RETAINED, ALLOCATED = "KEPT", "RETAINED", "ALLOCATED"
MOVED_LEFT, MOVED_SIDE, MOVED_GRADE, MOVED_CAPACITY = ("MOVED_LEFT", "MOVED_SIDE", "MOVED_GRADE", "MOVED_CAPACITY")
MOVE_REASONS = (MOVED_LEFT, MOVED_SIDE, MOVED_GRADE, MOVED_CAPACITY)
REASON_WORDS = {
    KEPT: "stays with its offender manager",
    RETAINED: "kept by a retention request, where the rules alone would have moved it",
    ALLOCATED: "had no offender manager: allocate it to the new one",
    MOVED_LEFT: "its offender manager is no longer in the staff extract",
    MOVED_SIDE: "its offender manager goes to the other side",
    MOVED_GRADE: "its offender manager may not hold a case of this class",
    MOVED_CAPACITY: "to bring an offender manager back within capacity",
}

# Outcome of a retention request, as told to the practitioner.
RETENTION_HONOURED = "HONOURED"  # the case stays with the OM who asked
RETENTION_NOT_NEEDED = "KEPT_ANYWAY"  # rejected, but the case stayed with its OM for other reasons
RETENTION_REJECTED_MOVED = "MOVED"  # rejected, and the case moved
RETENTION_OM_LEFT = "OM_LEFT"  # could not be honoured: the OM is no longer in post
RETENTION_PENDING = "KEPT_PENDING"  # not decided yet: the case stays with the OM until it is
RETENTION_NOT_FOUND = "CASE_NOT_FOUND"  # the CRN is not among the cases aligned
OUTCOME_WORDS = {
    RETENTION_HONOURED: "accepted: the case stays with the officer who asked",
    RETENTION_PENDING: "pending: the case stays with the officer who asked until the request is decided",
    RETENTION_NOT_NEEDED: "rejected, but the case stays with its officer for other reasons",
    RETENTION_REJECTED_MOVED: "rejected: the case moves (the decision note says why)",
    RETENTION_OM_LEFT: "could not be honoured: the officer who asked is no longer in post",
    RETENTION_NOT_FOUND: "the case is not in this extract's aligned cases",
}

# How a side's alignment was solved (see alignment.SolveReport; each report also says whether it is proven).
LP_FLOW, LP_INTEGRAL, MIP = "LP_FLOW", "LP_INTEGRAL", "MIP"
OTHER_SIDE, NO_STAFF = "OTHER_SIDE", "NO_STAFF"
