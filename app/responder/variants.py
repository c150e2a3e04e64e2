"""Answer-style experiment: load ``knowledge/variants.yaml`` and assign users to variants.

Assignment is sticky and deterministic: sha256 of ``"{workspace}:{user_id}:{experiment}"`` is
mapped to a number in [0, 1) and placed on the cumulative weights, so the same user gets the
same variant in every process (it never depends on Python's hash seed), and renaming the
experiment reshuffles everyone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from app.errors import ConfigError, ValidationError

DEFAULT_VARIANTS_PATH = Path(__file__).resolve().parents[2] / "knowledge" / "variants.yaml"

Style = Literal["standard", "concise_empathetic"]
Collection = Literal["articles", "conversations"]

# How to fix each field, appended to the validation message (keyed by the field's own name).
_FIX_HINTS: dict[str, str] = {
    "experiment": "name the experiment, e.g. experiment: answer-style-2026-11",
    "variants": "list at least one variant under 'variants:'",
    "name": "use lowercase letters, digits, '-' or '_', e.g. name: concise_empathetic",
    "weight": "set a number above 0; weights are relative, e.g. 50 and 50 for an even split",
    "description": "say in one line what the variant changes",
    "system_prompt": "write the instructions the answer model gets for this variant",
    "style": "use one of: standard, concise_empathetic",
    "retrieval": "give a mapping, e.g. retrieval: {k: 4, collections: [articles, conversations]}",
    "k": "use a whole number from 1 to 20, e.g. k: 4",
    "collections": "list one or both of: articles, conversations",
    "escalation": "give a mapping, e.g. escalation: {confidence_threshold: 0.35, "
    "clarify_threshold: 0.5, max_failed_turns: 2}",
    "confidence_threshold": "use a number from 0 to 1, e.g. 0.35",
    "clarify_threshold": "use a number from 0 to 1, at or above confidence_threshold, e.g. 0.5",
    "max_failed_turns": "use a whole number of at least 1, e.g. 2",
    "max_tokens": "use a whole number from 64 to 4096, e.g. 700",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrievalSettings(_Frozen):
    """How many passages to retrieve for a variant, and from which collections."""

    k: int = Field(default=4, ge=1, le=20)
    collections: tuple[Collection, ...] = Field(
        default=("articles", "conversations"), min_length=1
    )

    @field_validator("collections")
    @classmethod
    def _unique_collections(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a collection is listed twice")
        return value


class EscalationSettings(_Frozen):
    """Thresholds the escalation rules use for one variant.

    Args:
        confidence_threshold: retrieval confidence below this → clarify (or escalate if the
            customer was already asked to clarify).
        clarify_threshold: below this (and at or above ``confidence_threshold``) a very short or
            vague question gets a clarifying question instead of an answer.
        max_failed_turns: consecutive unresolved assistant turns before handing off.
    """

    confidence_threshold: float = Field(default=0.35, ge=0.0, le=1.0)
    clarify_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    max_failed_turns: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> EscalationSettings:
        if self.confidence_threshold > self.clarify_threshold:
            raise ValueError(
                f"confidence_threshold ({self.confidence_threshold}) is above "
                f"clarify_threshold ({self.clarify_threshold}); lower confidence_threshold or "
                "raise clarify_threshold"
            )
        return self


class Variant(_Frozen):
    """One arm of the experiment: the prompt, answer style, retrieval and escalation settings.

    Args:
        name: unique id stored with every conversation (``control``, ``concise_empathetic``).
        weight: relative share of users (> 0).
        description: what this arm changes, for reports.
        system_prompt: the full system prompt handed to the answer model.
        style: answer style the providers render (``standard`` or ``concise_empathetic``).
        retrieval: passages to retrieve.
        escalation: thresholds for ``app.responder.escalation.decide``.
        max_tokens: answer length cap for generative providers.

    Example:
        >>> config.get("control").retrieval.k
        4
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    weight: float = Field(gt=0)
    description: str = ""
    system_prompt: str = Field(min_length=20)
    style: Style = "standard"
    retrieval: RetrievalSettings = RetrievalSettings()
    escalation: EscalationSettings = EscalationSettings()
    max_tokens: int = Field(default=700, ge=64, le=4096)


class VariantConfig(_Frozen):
    """The experiment: its name and its variants (at least one, unique names).

    Example:
        >>> config = load_variants("knowledge/variants.yaml")
        >>> assign(config, "acme", "user-42").name
        'concise_empathetic'
    """

    experiment: str = Field(min_length=1, pattern=r"^\S+$")
    variants: tuple[Variant, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> VariantConfig:
        seen: set[str] = set()
        for variant in self.variants:
            if variant.name in seen:
                raise ValueError(
                    f"variant '{variant.name}': field 'name': the name is used by more than one "
                    "variant; give each variant a unique name"
                )
            seen.add(variant.name)
        return self

    @property
    def names(self) -> list[str]:
        """Variant names in file order."""
        return [v.name for v in self.variants]

    def get(self, name: str) -> Variant:
        """The variant called ``name``; ``ValidationError`` naming the valid names otherwise."""
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise ValidationError(
            f"unknown variant '{name}' in experiment '{self.experiment}'; "
            f"use one of: {', '.join(self.names)}"
        )


def bucket(workspace: str, user_id: str, experiment: str) -> float:
    """Stable position in [0, 1) for a user in an experiment (sha256, not Python's ``hash``)."""
    digest = hashlib.sha256(f"{workspace}:{user_id}:{experiment}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(
    config: VariantConfig, workspace: str, user_id: str, override: str | None = None
) -> Variant:
    """The user's variant: ``override`` when given, else the sticky weighted assignment.

    Args:
        config: the loaded experiment.
        workspace: tenant the user belongs to (the same user id in two workspaces is two users).
        user_id: a stable id for the customer (use the conversation id when anonymous).
        override: a variant name to force (QA, demos); empty or ``None`` means no override.

    Returns:
        The chosen ``Variant``.

    Raises:
        ValidationError: the override names no variant, or ``user_id`` is empty.
    """
    if override:
        return config.get(override)
    if not user_id:
        raise ValidationError(
            "cannot assign a variant without a user id; pass a stable customer id, or the "
            "conversation id for anonymous customers"
        )
    total = sum(v.weight for v in config.variants)
    point = bucket(workspace, user_id, config.experiment) * total
    cumulative = 0.0
    for variant in config.variants:
        cumulative += variant.weight
        if point < cumulative:
            return variant
    return config.variants[-1]  # float rounding at the very top of the range


def parse_variants(data: Any, source: str = "<variants>") -> VariantConfig:
    """Validate already-parsed YAML; ``ConfigError`` naming ``source``, variant, field and fix.

    A top-level ``shared_prompt`` (optional) is prepended to every variant's ``system_prompt``
    so the rules every arm shares are written once.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source}: expected a mapping with 'experiment' and 'variants' at the top level, "
            f"got {type(data).__name__}; see knowledge/variants.yaml for the layout"
        )
    data = dict(data)
    shared = data.pop("shared_prompt", "") or ""
    if not isinstance(shared, str):
        raise ConfigError(f"{source}: field 'shared_prompt': must be text; use a YAML block (|)")
    raw_variants = data.get("variants")
    if shared and isinstance(raw_variants, list):
        data["variants"] = [_with_shared_prompt(v, shared) for v in raw_variants]
    try:
        return VariantConfig.model_validate(data)
    except PydanticValidationError as e:
        lines = [_describe(err, raw_variants, source) for err in e.errors()]
        raise ConfigError("\n".join(lines)) from e


def load_variants(path: str | Path = DEFAULT_VARIANTS_PATH) -> VariantConfig:
    """Read and validate a variants YAML file (``ConfigError`` with the fix when it is wrong)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: variants file not found; check the path") from e
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the variants file ({e})") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e}); fix the syntax") from e
    return parse_variants(data, str(path))


def _with_shared_prompt(raw: Any, shared: str) -> Any:
    if isinstance(raw, Mapping) and isinstance(raw.get("system_prompt"), str):
        return {**raw, "system_prompt": f"{shared.rstrip()}\n\n{raw['system_prompt'].strip()}"}
    return raw


def _describe(err: Mapping[str, Any], raw_variants: Any, source: str) -> str:
    """One line per pydantic error: file, variant, field, problem and how to fix it."""
    loc = list(err["loc"])
    where = ""
    if len(loc) >= 2 and loc[0] == "variants" and isinstance(loc[1], int):
        index = loc[1]
        name = None
        if isinstance(raw_variants, list) and isinstance(raw_variants[index], Mapping):
            name = raw_variants[index].get("name")
        where = f"variant '{name}': " if name else f"variant #{index + 1}: "
        loc = loc[2:]
    message = str(err["msg"]).removeprefix("Value error, ")
    if not loc:
        return f"{source}: {where}{message}"
    # Tuple items ("collections", 1) are reported as the field they belong to.
    field_path = ".".join(str(part) for part in loc if not isinstance(part, int))
    leaf = str(next(part for part in reversed(loc) if not isinstance(part, int)))
    if err["type"] == "extra_forbidden":
        return (f"{source}: {where}field '{field_path}': unknown field; remove it or check the "
                "spelling")
    if err["type"] == "value_error":  # our own validators already say how to fix it
        return f"{source}: {where}field '{field_path}': {message}"
    if err["type"] == "missing":
        message = "is required"
    elif err["type"] == "too_short":
        message = "is empty"
    elif "input" in err and not isinstance(err["input"], Mapping | list):
        message = f"{message} (got {err['input']!r})"
    hint = _FIX_HINTS.get(leaf, "")
    return f"{source}: {where}field '{field_path}': {message}" + (f"; {hint}" if hint else "")
