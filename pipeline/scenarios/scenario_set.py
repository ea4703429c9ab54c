"""A scenario set: the base policy and its variants, each the base with a few settings changed.

Read and checked once, before any work: every variant is checked as a policy file is, and a bad key or value
is refused naming the scenario and the key (docs/scenarios.md).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.policy import Policy, PolicyError, checked_policy, policy_source

BASE = "base"
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


class ScenarioError(PolicyError):
    """A scenarios file that cannot be used, said in one line: which scenario, which key, what is wrong."""


@dataclass(frozen=True)
class Scenario:
    name: str
    purpose: str
    overrides: dict  # dotted key -> value, as written
    policy: Policy


@dataclass(frozen=True)
class ScenarioSet:
    set_id: str  # the same scenarios file over the same base policy has the same id
    base_file: str | None
    source: bytes  # the scenarios file as given, kept beside the results
    scenarios: tuple[Scenario, ...]  # the base first, then the variants in the file's order

    @property
    def base(self) -> Scenario:
        return self.scenarios[0]

    @property
    def variants(self) -> tuple[Scenario, ...]:
        return self.scenarios[1:]

    def manifest_entry(self) -> list[dict]:
        return [
            {"scenario": s.name, "purpose": s.purpose, "set": s.overrides, "policy": s.policy.manifest_entry()}
            for s in self.scenarios
        ]


def with_overrides(settings: dict, overrides: dict) -> dict:
    """The settings with each dotted key (`alignment.capacity_limit_pct`) set to its value; the settings
    given are not changed. A key whose parent is not a mapping raises KeyError naming it; a key that does not
    exist is added, for the policy's own check to refuse (or accept, where the policy has a default); a key
    set with a key inside it too (`alignment` and `alignment.cost_move`) raises KeyError."""
    out = copy.deepcopy(settings)
    for dotted in overrides:
        inside = sorted(k for k in overrides if str(k).startswith(f"{dotted}."))
        if inside:
            raise KeyError(f"{dotted} is set, and so is {inside[0]} inside it: set one or the other")
    for dotted, value in overrides.items():
        parts = str(dotted).split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise KeyError(f"{'.'.join(parts[: i + 1])} is a value, not a group of settings")
        node[parts[-1]] = copy.deepcopy(value)
    return out


def load_scenario_set(path: str | Path) -> ScenarioSet:
    """Read a scenarios file and check every variant against the policy's rules; ScenarioError when not."""
    where = Path(path)
    try:
        source = where.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"scenarios file {path} cannot be read: {exc.strerror or exc}") from None
    try:
        spec = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise ScenarioError(
            f"scenarios file {path} is not valid YAML: {getattr(exc, 'problem', None) or exc}"
        ) from None
    if not isinstance(spec, dict) or not isinstance(spec.get("scenarios"), dict) or not spec["scenarios"]:
        raise ScenarioError(f"scenarios file {path} must hold a mapping `scenarios:` of at least one scenario")
    unknown = sorted(set(spec) - {"base", "scenarios"})
    if unknown:
        raise ScenarioError(f"scenarios file {path}: unknown top-level keys {unknown} (only base and scenarios)")
    base_file = spec.get("base")
    if base_file is not None:  # relative to the scenarios file, as a reader of it would expect
        base_file = str((where.parent / str(base_file)) if not Path(str(base_file)).is_absolute() else base_file)
    settings, raw = policy_source(base_file)
    base_sha = hashlib.sha256(raw).hexdigest()
    scenarios = [Scenario(BASE, "the base policy, as it is", {}, checked_policy(settings, base_sha, "the base policy"))]
    for name, body in spec["scenarios"].items():
        scenarios.append(_variant(str(name), body, settings, base_sha))
    set_id = hashlib.sha256(base_sha.encode() + b"\0" + source).hexdigest()[:12]
    return ScenarioSet(set_id, base_file, source, tuple(scenarios))


# Policy sections every scenario shares with the base: reading the extracts, pruning, suppressing counts
SHARED_SECTIONS = ("extracts", "retention", "publishing")


def _variant(name: str, body, settings: dict, base_sha: str) -> Scenario:
    if name == BASE or not _NAME.fullmatch(name):
        raise ScenarioError(
            f"scenario {name!r}: a name is 1 to 40 lower-case letters, digits and _, starting with a letter, "
            f"and not {BASE!r} (the base policy's own name)"
        )
    if not isinstance(body, dict) or not isinstance(body.get("set"), dict) or not body["set"]:
        raise ScenarioError(f"scenario {name}: needs `set:`, a mapping of at least one dotted key to its value")
    extra = sorted(set(body) - {"purpose", "set"})
    if extra:
        raise ScenarioError(f"scenario {name}: unknown keys {extra} (only purpose and set)")
    overrides = {str(k): v for k, v in body["set"].items()}
    if "version" in overrides or "sha256" in overrides:
        raise ScenarioError(f"scenario {name}: version and sha256 are the base policy's own, not settings to vary")
    shared = sorted(k for k in overrides if k.split(".", 1)[0] in SHARED_SECTIONS)
    if shared:
        raise ScenarioError(
            f"scenario {name}: {', '.join(shared)}: the extracts are read, and the results shown, once for every "
            "scenario with the base policy's settings, so a scenario cannot vary them"
        )
    try:
        changed = with_overrides(settings, overrides)
    except KeyError as exc:
        raise ScenarioError(f"scenario {name}: {exc.args[0]}") from None
    changed["version"] = f"{settings.get('version', '')}+{name}"
    # A variant's fingerprint: the base file's and its overrides', so a manifest tells variants apart
    sha = hashlib.sha256(f"{base_sha}\0{json.dumps(overrides, sort_keys=True, default=str)}".encode()).hexdigest()
    try:
        policy = checked_policy(changed, sha, f"scenario {name}")
    except PolicyError as exc:
        raise ScenarioError(f"{exc} (set: {', '.join(overrides)})") from None
    return Scenario(name, str(body.get("purpose") or ""), overrides, policy)
