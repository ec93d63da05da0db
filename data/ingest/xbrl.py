"""Numbers a filing states, read from its inline XBRL (`ix:nonFraction` tags) rather than from
its text: each fact's concept, value (scaled and signed), unit and period, and whether it is a
breakdown (a context with dimensions, e.g. one segment's revenue) or the entity's total."""

from __future__ import annotations

import html
import re

_FACT = re.compile(r"<ix:nonFraction\b([^>]*)>(.*?)</ix:nonFraction>", re.S | re.I)
_CONTEXT = re.compile(r"<xbrli:context\b[^>]*\bid=\"([^\"]+)\"[^>]*>(.*?)</xbrli:context>",
                      re.S | re.I)
_UNIT = re.compile(r"<xbrli:unit\b[^>]*\bid=\"([^\"]+)\"[^>]*>(.*?)</xbrli:unit>", re.S | re.I)
_ATTRIBUTE = re.compile(r"([\w:.-]+)=\"([^\"]*)\"")
_MEASURE = re.compile(r"<xbrli:measure>\s*(?:[\w-]+:)?([^<\s]+)\s*</xbrli:measure>", re.I)
_TAG = re.compile(r"<[^>]+>")


def numeric_facts(document: str) -> list[dict]:
    """Every numeric fact of an inline XBRL document, once per (concept, context, unit):
    concept, value, unit, period_start (None for an instant), period_end, dimensional,
    context, decimals."""
    contexts = {cid: _period(body) for cid, body in _CONTEXT.findall(document)}
    units = {uid: _unit(body) for uid, body in _UNIT.findall(document)}
    facts, seen = [], set()
    for attributes, inner in _FACT.findall(document):
        attrs = dict(_ATTRIBUTE.findall(attributes))
        concept, context, unit = attrs.get("name"), attrs.get("contextRef"), attrs.get("unitRef")
        value = _value(inner, attrs)
        if not concept or context not in contexts or value is None or (
                (concept, context, unit) in seen):
            continue
        seen.add((concept, context, unit))
        start, end, dimensional = contexts[context]
        facts.append({"concept": concept, "value": value, "unit": units.get(unit, unit),
                      "period_start": start, "period_end": end, "dimensional": dimensional,
                      "context": context, "decimals": attrs.get("decimals")})
    return facts


def _period(body: str) -> tuple[str | None, str | None, bool]:
    def tag(name: str) -> str | None:
        found = re.search(rf"<xbrli:{name}>\s*([\d-]+)\s*</xbrli:{name}>", body, re.I)
        return found.group(1) if found else None

    instant = tag("instant")
    dimensional = re.search(r"explicitMember|typedMember", body, re.I) is not None
    return (None, instant, dimensional) if instant else (tag("startDate"), tag("endDate"),
                                                         dimensional)


def _unit(body: str) -> str:
    measures = _MEASURE.findall(body)
    return "/".join(measures) if measures else ""


def _value(inner: str, attrs: dict[str, str]) -> float | None:
    """The number shown, in the unit: `scale` powers of ten, `sign="-"` negative; a dash in a
    `fixed-zero` format is 0."""
    text = html.unescape(_TAG.sub("", inner)).strip()
    form = attrs.get("format", "").lower()
    if "zero" in form or text in ("-", "—", "–"):
        number = 0.0
    else:
        if "comma-decimal" in form or "numcommadecimal" in form:
            text = text.replace(".", "").replace(" ", "").replace(",", ".")
        digits = re.sub(r"[^\d.]", "", text)
        if not digits or digits.count(".") > 1:
            return None
        number = float(digits)
    number *= 10 ** int(attrs.get("scale", "0") or 0)
    return -number if attrs.get("sign") == "-" else number
