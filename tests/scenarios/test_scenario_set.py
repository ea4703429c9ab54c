"""Reading a scenarios file: each variant is the base with its dotted keys set, checked as a policy is, and
a bad key or value is refused naming the scenario and the key."""

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pipeline.policy import load_policy, policy_source
from pipeline.scenarios.scenario_set import ScenarioError, load_scenario_set, with_overrides


def _file(tmp_path: Path, spec: dict | str, name: str = "scenarios.yaml") -> Path:
    path = tmp_path / name
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec))
    return path


def test_each_variant_is_the_base_with_its_settings_changed(tmp_path):
    s = load_scenario_set(
        _file(
            tmp_path,
            {
                "scenarios": {
                    "capacity_110": {"purpose": "more room", "set": {"alignment.capacity_limit_pct": 110}},
                    "custody_to_nps": {"set": {"case_split.enabled.CUSTODY": True}},
                }
            },
        )
    )
    base = load_policy()
    assert [x.name for x in s.scenarios] == ["base", "capacity_110", "custody_to_nps"]
    assert s.base.policy.model_dump(exclude={"sha256"}) == base.model_dump(exclude={"sha256"})
    cap, custody = s.variants
    assert cap.policy.alignment.capacity_limit_pct == 110 and base.alignment.capacity_limit_pct == 100
    assert cap.policy.model_dump(exclude={"alignment", "version", "sha256"}) == base.model_dump(
        exclude={"alignment", "version", "sha256"}
    )
    assert custody.policy.case_split.enabled["CUSTODY"] and not base.case_split.enabled["CUSTODY"]
    assert "CUSTODY" in custody.policy.case_split.active_rules()
    assert cap.purpose == "more room" and cap.policy.version == f"{base.version}+capacity_110"
    # every variant is told apart in a manifest, and the same file gives the same set id
    assert len({x.policy.sha256 for x in s.scenarios}) == 3
    assert load_scenario_set(tmp_path / "scenarios.yaml").set_id == s.set_id


def test_a_base_policy_file_is_read_relative_to_the_scenarios_file(tmp_path):
    settings, _ = policy_source()
    settings["alignment"]["capacity_limit_pct"] = 90
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "policy.yaml").write_text(yaml.safe_dump(settings))
    spec = {"base": "policy.yaml", "scenarios": {"more": {"set": {"alignment.capacity_limit_pct": 120}}}}
    s = load_scenario_set(_file(tmp_path / "mine", spec))
    assert s.base.policy.alignment.capacity_limit_pct == 90
    assert s.variants[0].policy.alignment.capacity_limit_pct == 120
    other = load_scenario_set(_file(tmp_path, {"scenarios": spec["scenarios"]}))
    assert other.set_id != s.set_id  # another base, another set


@pytest.mark.parametrize(
    "scenarios, said",
    [
        ({"typo": {"set": {"alignment.capacity_limt_pct": 110}}}, ["scenario typo", "alignment.capacity_limt_pct"]),
        ({"neg": {"set": {"alignment.capacity_limit_pct": -5}}}, ["scenario neg", "alignment.capacity_limit_pct"]),
        ({"rule": {"set": {"case_split.enabled.CUSTARD": True}}}, ["scenario rule", "CUSTARD"]),
        (
            {"order": {"set": {"alignment.cost_move": 10**9}}},
            ["scenario order", "costs must be strictly ordered", "alignment.cost_move"],
        ),
        ({"deep": {"set": {"alignment.capacity_limit_pct.x": 1}}}, ["scenario deep", "alignment.capacity_limit_pct"]),
        ({"base": {"set": {"alignment.capacity_limit_pct": 110}}}, ["'base'"]),
        ({"Bad Name": {"set": {"alignment.capacity_limit_pct": 110}}}, ["'Bad Name'"]),
        ({"empty": {"purpose": "nothing set"}}, ["scenario empty", "set:"]),
        ({"ver": {"set": {"version": "9"}}}, ["scenario ver", "version"]),
        ({"share": {"set": {"extracts.max_held_back_share": 0.5}}}, ["scenario share", "extracts.max_held_back_share"]),
        ({"few": {"set": {"publishing.suppression_threshold": 3}}}, ["scenario few", "publishing.suppression"]),
        (
            {"both": {"set": {"alignment": {}, "alignment.cost_move": 1}}},
            ["scenario both", "alignment.cost_move inside it"],
        ),
    ],
)
def test_a_bad_key_or_value_is_refused_naming_the_scenario_and_the_key(tmp_path, scenarios, said):
    with pytest.raises(ScenarioError) as refused:
        load_scenario_set(_file(tmp_path, {"scenarios": scenarios}))
    for words in said:
        assert words in str(refused.value), str(refused.value)


@pytest.mark.parametrize(
    "text", ["scenarios: []", "- a\n- b", "scenarios: {}", "{scenarios: {a: {set: {x: 1}}}, extra: 1}", "a: [: b"]
)
def test_a_file_that_is_not_a_scenario_set_is_refused_in_one_line(tmp_path, text):
    with pytest.raises(ScenarioError) as refused:
        load_scenario_set(_file(tmp_path, text))
    assert "\n" not in str(refused.value)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ScenarioError, match="cannot be read"):
        load_scenario_set(tmp_path / "nowhere.yaml")


keys = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3).map(".".join)


@given(st.dictionaries(keys, st.integers(), max_size=4))
def test_overrides_set_exactly_their_keys_and_leave_the_settings_given_alone(overrides):
    settings = {"a": {"b": {"c": 1}, "x": 2}, "y": 3}
    try:
        changed = with_overrides(settings, overrides)
    except KeyError:
        # refused only for two keys one inside the other ("a", "a.b"): no key here is under a value
        assert any(o != k and o.startswith(k + ".") for k in overrides for o in overrides)
        return
    assert settings == {"a": {"b": {"c": 1}, "x": 2}, "y": 3}
    for dotted, value in overrides.items():
        node = changed
        for part in dotted.split("."):
            node = node[part]
        assert node == value
    assert changed["y"] == 3  # a key not set is left as it was
