"""Variants: loading knowledge/variants.yaml, validation messages, sticky weighted assignment."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.errors import ConfigError, SupportbotError, ValidationError
from app.responder.variants import (
    DEFAULT_VARIANTS_PATH,
    VariantConfig,
    assign,
    bucket,
    load_variants,
    parse_variants,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "knowledge" / "variants.yaml"


def _raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    return data


def _config(weights: dict[str, float], experiment: str = "exp-1") -> VariantConfig:
    return parse_variants({
        "experiment": experiment,
        "variants": [
            {"name": name, "weight": w, "system_prompt": "You are a careful support assistant."}
            for name, w in weights.items()
        ],
    })


@pytest.fixture(scope="module")
def shipped() -> VariantConfig:
    return load_variants(SHIPPED)


# --- the shipped file -------------------------------------------------------------------------

def test_shipped_file_is_the_default_path() -> None:
    assert DEFAULT_VARIANTS_PATH == SHIPPED
    assert load_variants().names == ["control", "concise_empathetic"]


def test_shipped_experiment_and_arms(shipped: VariantConfig) -> None:
    assert shipped.experiment == "answer-style-2026-11"
    control, concise = shipped.get("control"), shipped.get("concise_empathetic")
    assert (control.weight, concise.weight) == (50, 50)
    assert (control.style, concise.style) == ("standard", "concise_empathetic")
    for v in (control, concise):
        assert v.retrieval.k == 4
        assert v.retrieval.collections == ("articles", "conversations")
        assert v.escalation.confidence_threshold == 0.35
        assert v.escalation.clarify_threshold == 0.5
        assert v.escalation.max_failed_turns == 2
        assert v.description
    assert control.max_tokens == 700
    assert concise.max_tokens < control.max_tokens


def test_shipped_prompts_carry_shared_rules_and_their_own_style(shipped: VariantConfig) -> None:
    for v in shipped.variants:
        prompt = v.system_prompt
        assert prompt.startswith("You are the support assistant for Lumen & Co.")
        for rule in ("cited_ids", "Never invent", "ask one short clarifying", "988",
                     "8 am\N{EN DASH}10 pm ET", "explicit_request", "account_security"):
            assert rule in prompt, (v.name, rule)
    assert "numbered steps" in shipped.get("control").system_prompt
    assert "one short sentence" in shipped.get("concise_empathetic").system_prompt
    assert "numbered steps" not in shipped.get("concise_empathetic").system_prompt


# --- validation messages name the file, the variant, the field and the fix ------------------

def _set(variant: int, *path_and_value: Any) -> Callable[[dict[str, Any]], None]:
    *path, value = path_and_value

    def mutate(data: dict[str, Any]) -> None:
        target = data["variants"][variant]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def _drop(variant: int, key: str) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        del data["variants"][variant][key]
    return mutate


BAD_FIELDS = [
    (_set(0, "weight", 0), "control", "weight", "above 0"),
    (_set(1, "weight", -5), "concise_empathetic", "weight", "above 0"),
    (_set(0, "escalation", "confidence_threshold", 1.5), "control",
     "escalation.confidence_threshold", "from 0 to 1"),
    (_set(1, "escalation", "clarify_threshold", -0.1), "concise_empathetic",
     "escalation.clarify_threshold", "from 0 to 1"),
    (_set(0, "escalation", "max_failed_turns", 0), "control", "escalation.max_failed_turns",
     "at least 1"),
    (_set(0, "retrieval", "k", 0), "control", "retrieval.k", "1 to 20"),
    (_set(1, "retrieval", "k", 21), "concise_empathetic", "retrieval.k", "1 to 20"),
    (_set(0, "retrieval", "collections", ["articles", "faq"]), "control",
     "retrieval.collections", "articles, conversations"),
    (_set(0, "retrieval", "collections", []), "control", "retrieval.collections",
     "articles, conversations"),
    (_set(0, "style", "verbose"), "control", "style", "standard, concise_empathetic"),
    (_set(0, "max_tokens", 10), "control", "max_tokens", "64 to 4096"),
    (_set(1, "name", "Concise Arm"), "Concise Arm", "name", "lowercase letters"),
    (_set(0, "wieght", 3), "control", "wieght", "unknown field"),
    (_drop(1, "system_prompt"), "concise_empathetic", "system_prompt", "is required"),
    (_drop(0, "weight"), "control", "weight", "is required"),
    (_set(1, "escalation", "confidence_threshold", 0.9), "concise_empathetic", "escalation",
     "lower confidence_threshold"),
    (_set(1, "name", "control"), "control", "name", "unique"),
]


@pytest.mark.parametrize(("mutate", "variant", "field", "fix"), BAD_FIELDS,
                         ids=[f"{b[1]}-{b[2]}-{i}" for i, b in enumerate(BAD_FIELDS)])
def test_bad_field_message_names_file_variant_field_and_fix(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], variant: str, field: str, fix: str,
) -> None:
    data = copy.deepcopy(_raw())
    mutate(data)
    path = tmp_path / "variants.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_variants(path)
    message = str(info.value)
    assert str(path) in message
    assert f"variant '{variant}'" in message
    assert f"field '{field}'" in message
    assert fix in message


@pytest.mark.parametrize(("data", "field", "fix"), [
    ({"experiment": "x", "variants": []}, "variants", "at least one variant"),
    ({"variants": [{"name": "a", "weight": 1, "system_prompt": "x" * 30}]}, "experiment",
     "is required"),
    ({"experiment": "x"}, "variants", "is required"),
])
def test_top_level_errors_name_the_field(data: dict[str, Any], field: str, fix: str) -> None:
    with pytest.raises(ConfigError, match=f"my.yaml: field '{field}': .*{fix}"):
        parse_variants(data, "my.yaml")


def test_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_variants(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("experiment: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_variants(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- control\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_variants(listed)
    assert issubclass(ConfigError, SupportbotError)


# --- assignment -------------------------------------------------------------------------------

def test_bucket_is_sha256_based_and_pinned() -> None:
    # Pinned (checked with `printf acme:user-42:answer-style-2026-11 | sha256sum`: first 16 hex) so
    # a change of hashing, and with it every user's arm, is a deliberate decision.
    expected = int("bd632b16774f4a67", 16) / 2**64
    assert bucket("acme", "user-42", "answer-style-2026-11") == pytest.approx(expected, abs=1e-15)
    assert expected == pytest.approx(0.7397944383, abs=1e-9)
    assert 0.0 <= bucket("", "", "") < 1.0


def test_assignment_is_sticky(shipped: VariantConfig) -> None:
    first = [assign(shipped, "acme", f"user-{i}").name for i in range(200)]
    again = [assign(shipped, "acme", f"user-{i}").name for i in range(200)]
    assert first == again
    assert set(first) == {"control", "concise_empathetic"}


def test_assignment_is_the_same_in_other_processes(shipped: VariantConfig) -> None:
    users = [f"user-{i}" for i in range(50)]
    expected = ",".join(assign(shipped, "acme", u).name for u in users)
    script = (
        "from app.responder.variants import assign, load_variants\n"
        "c = load_variants()\n"
        f"print(','.join(assign(c, 'acme', u).name for u in {users!r}))\n"
    )
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env,
                             capture_output=True, text=True, check=True, timeout=120)
        assert out.stdout.strip() == expected


def test_workspace_and_experiment_change_the_draw() -> None:
    config_a = _config({"a": 50, "b": 50}, experiment="exp-1")
    config_b = _config({"a": 50, "b": 50}, experiment="exp-2")
    users = [f"u{i}" for i in range(400)]
    same_exp = [assign(config_a, "w1", u).name == assign(config_a, "w2", u).name for u in users]
    new_exp = [assign(config_a, "w1", u).name == assign(config_b, "w1", u).name for u in users]
    assert 0.35 < sum(same_exp) / len(users) < 0.65
    assert 0.35 < sum(new_exp) / len(users) < 0.65


@pytest.mark.parametrize("weights", [
    {"control": 50, "concise_empathetic": 50},
    {"a": 70, "b": 20, "c": 10},
    {"a": 1, "b": 3},  # weights are relative: 25% / 75%
])
def test_weights_are_respected_within_one_and_a_half_points(weights: dict[str, float]) -> None:
    config = _config(weights)
    counts = Counter(assign(config, "acme", f"user-{i}").name for i in range(20_000))
    total = sum(weights.values())
    for name, weight in weights.items():
        share = 100 * counts[name] / 20_000
        assert abs(share - 100 * weight / total) <= 1.5, (name, share)


def test_single_variant_takes_everyone() -> None:
    config = _config({"only": 3})
    assert {assign(config, "w", f"u{i}").name for i in range(100)} == {"only"}


def test_override_picks_the_named_variant(shipped: VariantConfig) -> None:
    for i in range(20):
        assert assign(shipped, "acme", f"u{i}", override="concise_empathetic").name == (
            "concise_empathetic")
        assert assign(shipped, "acme", f"u{i}", override="control").name == "control"
    assert assign(shipped, "acme", "u1", override="").name == assign(shipped, "acme", "u1").name


def test_unknown_override_names_the_valid_variants(shipped: VariantConfig) -> None:
    with pytest.raises(ValidationError) as info:
        assign(shipped, "acme", "u1", override="shouty")
    message = str(info.value)
    assert "shouty" in message and "control" in message and "concise_empathetic" in message


def test_get_and_empty_user(shipped: VariantConfig) -> None:
    assert shipped.get("control").name == "control"
    with pytest.raises(ValidationError, match="control, concise_empathetic"):
        shipped.get("nope")
    with pytest.raises(ValidationError, match="conversation id"):
        assign(shipped, "acme", "")


def test_shipped_prompts_agree_with_the_claude_output_contract(shipped: VariantConfig) -> None:
    # The provider strips nothing but the meta block: ids written into the answer text would
    # reach the customer, so no variant may ask for inline [id] citations.
    for v in shipped.variants:
        assert "square brackets" not in v.system_prompt, v.name
        assert "meta block" in v.system_prompt, v.name
