"""Markdown tables, one builder for every table the project writes (evaluation, experiments, the report)."""

from __future__ import annotations

from collections.abc import Mapping


def columns(rows: Mapping[str, Mapping[str, object]]) -> list[str]:
    """Every inner key of ``rows``, in first-seen order: a table's columns, and a bar chart's bars per group."""
    return list(dict.fromkeys(column for values in rows.values() for column in values))


def markdown_table(rows: Mapping[str, Mapping[str, object]], first: str, number_format: str = "g") -> list[str]:
    """The lines of a markdown table with one row per key of ``rows`` (headed ``first``) and one column per inner
    key; floats in ``number_format``, other values as text, and a missing value or None as '-'."""

    def text(value: object) -> str:
        if value is None:
            return "-"
        return format(value, number_format) if isinstance(value, float) else str(value)

    names = columns(rows)
    lines = [f"| {first} | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(text(values.get(column)) for column in names) + " |")
    return lines
