"""Versioned protocol files; a published file is never edited (a change becomes a new version)."""
