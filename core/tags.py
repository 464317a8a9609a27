"""The one parser for comma-separated tags typed into forms (runs, datasets, W&B)."""

from __future__ import annotations

from django import forms

MAX_TAGS = 20
MAX_TAG_LENGTH = 40


def parse_tags(text: str, *, lowercase: bool = False) -> list[str]:
    """Whitespace collapsed, duplicates dropped, order kept; too long, too many or
    unprintable tags are a validation error."""
    tags: list[str] = []
    for raw in text.split(","):
        tag = " ".join(raw.split())
        if lowercase:
            tag = tag.lower()
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise forms.ValidationError(f"Tags are at most {MAX_TAG_LENGTH} characters: “{tag}”.")
        if not tag.isprintable():
            raise forms.ValidationError("Tags cannot contain control characters.")
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise forms.ValidationError(f"At most {MAX_TAGS} tags.")
    return tags
