from pathlib import Path

import pytest
import yaml

from pipeline.policy import PolicyError, load_policy


def test_packaged_policy_loads_with_version_and_hash():
    p = load_policy()
    assert p.version == "1.3"
    assert len(p.sha256) == 64
    assert p.units_per_point == 15
    assert p.weight_units("NPS_HIGH") == 20 and p.weight_units("CRC_UPW") == 9
    assert p.case_split.active_rules() == ("MAPPA", "ROSH_HIGH", "PUBLIC_INTEREST", "DEPORT", "ROSH_UNASSESSED")


def _write(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load((Path(__file__).parents[1] / "pipeline/data/policy-v1.yaml").read_text())
    mutate(data)
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump(data))
    return f


def test_changed_policy_changes_hash(tmp_path):
    f = _write(tmp_path, lambda d: d["case_split"]["enabled"].update(CUSTODY=True))
    p = load_policy(f)
    assert p.case_split.active_rules()[-1] == "CUSTODY"
    assert p.sha256 != load_policy().sha256


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["alignment"].update(cost_move=10**9),  # move dearer than overflow
        lambda d: d["case_classes"]["weights"].pop("CRC_UPW"),  # class without a weight
        lambda d: d["case_classes"]["eligibility"]["NPS_HIGH"][0].update(grades=["CHIEF"]),
        lambda d: d["staff_split"].update(fallback_nps_share=1.5),
        lambda d: d.update(surprise=1),  # unknown key
        lambda d: d["case_split"].update(rule_order=["MAPPA", "MAPPA"]),
    ],
)
def test_inconsistent_policy_is_refused(tmp_path, mutate):
    with pytest.raises(PolicyError):
        load_policy(_write(tmp_path, mutate))
