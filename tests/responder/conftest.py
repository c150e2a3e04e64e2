"""Shared by the responder's step tests."""

from __future__ import annotations

import pytest

from app.responder.variants import DEFAULT_VARIANTS_PATH, Variant, load_variants


@pytest.fixture(scope="module")
def control() -> Variant:
    return load_variants(DEFAULT_VARIANTS_PATH).get("control")
