import pytest

from pipeline.decisions.case_split import split_cases
from pipeline.policy import load_policy
from tests.builders import cases

P = load_policy()


@pytest.mark.parametrize(
    "row, rule, side, klass",
    [
        ({"mappa_category": 2, "rosh": "LOW", "deport": True}, "MAPPA", "NPS", "NPS_HIGH"),
        ({"rosh": "VERY_HIGH", "registers": "RPIR"}, "ROSH_HIGH", "NPS", "NPS_HIGH"),
        ({"rosh": "HIGH"}, "ROSH_HIGH", "NPS", "NPS_HIGH"),
        ({"registers": "ADVP;RPIR", "deport": True}, "PUBLIC_INTEREST", "NPS", "NPS_STANDARD"),
        ({"deport": True}, "DEPORT", "NPS", "NPS_STANDARD"),
        ({"rosh": None}, "ROSH_UNASSESSED", "NPS", "NPS_STANDARD"),
        ({"rosh": "MEDIUM", "upw_only": True, "rsr": 9.0}, "DEFAULT_CRC", "CRC", "CRC_UPW"),
        ({"rosh": "MEDIUM", "rsr": 3.0}, "DEFAULT_CRC", "CRC", "CRC_COMPLEX"),
        ({"rosh": "MEDIUM", "ogrs": 75}, "DEFAULT_CRC", "CRC", "CRC_COMPLEX"),
        ({"registers": "RCPR"}, "DEFAULT_CRC", "CRC", "CRC_COMPLEX"),
        ({"rsr": 2.99, "ogrs": 74, "registers": "XADVP;RPIRX"}, "DEFAULT_CRC", "CRC", "CRC_STANDARD"),
        ({"case_type": "CUSTODY"}, "DEFAULT_CRC", "CRC", "CRC_STANDARD"),
    ],
)
def test_first_matching_rule_decides_side_and_class(row, rule, side, klass):
    out = split_cases(cases({"crn": "A000001", **row}), P).iloc[0]
    assert (out["rule"], out["side"], out["case_class"]) == (rule, side, klass)
    assert out["weight_units"] == P.weight_units(klass)


def test_optional_custody_rule_sends_custody_cases_to_nps():
    policy = P.model_copy(
        update={"case_split": P.case_split.model_copy(update={"enabled": {**P.case_split.enabled, "CUSTODY": True}})}
    )
    out = split_cases(cases({"crn": "A000001", "case_type": "CUSTODY"}, {"crn": "A000002"}), policy)
    assert list(out["rule"]) == ["CUSTODY", "DEFAULT_CRC"]
    assert list(out["case_class"]) == ["NPS_STANDARD", "CRC_STANDARD"]


def test_weights_in_points():
    out = split_cases(cases({"crn": "A1", "rosh": "HIGH"}, {"crn": "A2", "upw_only": True}, {"crn": "A3"}), P)
    assert list(out["weight"]) == pytest.approx([4 / 3, 0.6, 1.0])
