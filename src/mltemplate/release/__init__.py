"""Releasing the model: version and provenance (models/release.json), model card, container image, smoke test."""
