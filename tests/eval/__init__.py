"""Tests for eval/: metrics and A/B statistics."""
