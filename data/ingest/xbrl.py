"""Numbers a filing states, read from its inline XBRL (`ix:nonFraction` tags) rather than from
its text: each fact's concept, value (scaled and signed), unit and period, and whether it is a
breakdown (a context with dimensions, e.g. one segment's revenue) or the entity's total."""

from __future__ import annotations

import html
import re
from datetime import date

# A fact's tag holds no other fact's opening tag: an unclosed tag is found as such, never
# merged with the next fact's digits.
_FACT = re.compile(r"<ix:nonFraction\b([^>]*)>((?:(?!<ix:nonFraction\b).)*?)</ix:nonFraction>",
                   re.S | re.I)
_OPEN = re.compile(r"<ix:nonFraction\b([^>]*)>", re.I)
# Attribute values in either quote, as XML allows.
_CONTEXT = re.compile(r"<xbrli:context\b[^>]*\bid=[\"']([^\"']+)[\"'][^>]*>(.*?)</xbrli:context>",
                      re.S | re.I)
_UNIT = re.compile(r"<xbrli:unit\b[^>]*\bid=[\"']([^\"']+)[\"'][^>]*>(.*?)</xbrli:unit>",
                   re.S | re.I)
_ATTRIBUTE = re.compile(r"([\w:.-]+)=(?:\"([^\"]*)\"|'([^']*)')")
_MEASURE = re.compile(r"<xbrli:measure>\s*(?:[\w-]+:)?([^<\s]+)\s*</xbrli:measure>", re.I)
_TAG = re.compile(r"<[^>]+>")
_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
SCALES = range(-12, 16)  # powers of ten a fact may be scaled by (cents .. quadrillions)


def numeric_facts(document: str) -> tuple[list[dict], list[str]]:
    """Every valid numeric fact of an inline XBRL document, once per (concept, context, unit):
    concept, value, unit, period_start (None for an instant), period_end, dimensional,
    context, decimals; and why each invalid one was left out (one reason per fact: an unclosed
    tag, a bad scale or sign, no or an unknown unit or context, a context's bad dates)."""
    contexts = {cid: _period(body) for cid, body in _CONTEXT.findall(document)}
    units = {uid: _unit(body) for uid, body in _UNIT.findall(document)}
    facts, rejects, seen = [], [], set()
    closed = {m.start() for m in _FACT.finditer(document)}
    for opening in _OPEN.finditer(document):
        if opening.start() not in closed:
            name = _attributes(opening.group(1)).get("name")
            rejects.append(f"XBRL fact {name}: its ix:nonFraction tag is never closed")
    for attributes, inner in _FACT.findall(document):
        attrs = _attributes(attributes)
        concept, context, unit = attrs.get("name"), attrs.get("contextRef"), attrs.get("unitRef")
        problem = _problem(attrs, contexts, units)
        value = None if problem else _value(inner, attrs)
        if problem or value is None:
            rejects.append(f"XBRL fact {concept}: {problem or f'no number in {inner[:40]!r}'}")
            continue
        if (concept, context, unit) in seen:
            continue
        seen.add((concept, context, unit))
        start, end, dimensional = contexts[context]
        facts.append({"concept": concept, "value": value, "unit": units[unit],
                      "period_start": start, "period_end": end, "dimensional": dimensional,
                      "context": context, "decimals": attrs.get("decimals")})
    return facts, rejects


def _attributes(text: str) -> dict[str, str]:
    return {name: double or single for name, double, single in _ATTRIBUTE.findall(text)}


def _problem(attrs: dict[str, str], contexts: dict, units: dict) -> str | None:
    """Why a fact's attributes cannot be trusted (None when they can)."""
    scale, context = attrs.get("scale", "0") or "0", attrs.get("contextRef")
    if not attrs.get("name"):
        return "no name"
    if not re.fullmatch(r"-?\d{1,3}", scale.strip()) or int(scale) not in SCALES:
        return f"scale {scale!r} is not a power of ten from {SCALES[0]} to {SCALES[-1]}"
    if attrs.get("sign") not in (None, "-"):
        return f"sign {attrs['sign']!r} is neither absent nor '-'"
    if attrs.get("unitRef") not in units:
        return f"unit {attrs.get('unitRef')!r} is not declared"
    if context not in contexts:
        return f"context {context!r} is not declared"
    start, end, _ = contexts[context]
    try:
        first, last = (date.fromisoformat(d) if d else None for d in (start, end))
    except ValueError:
        return f"context {context!r} has a date that is not a calendar date ({start}, {end})"
    if last is None or (first is not None and first > last):
        return f"context {context!r} has no valid period ({start} .. {end})"
    return None


def _period(body: str) -> tuple[str | None, str | None, bool]:
    def tag(name: str) -> str | None:
        found = re.search(rf"<xbrli:{name}>\s*([^<]*?)\s*</xbrli:{name}>", body, re.I)
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
    `fixed-zero` format is 0. None when the text is not one number."""
    text = html.unescape(_TAG.sub("", inner)).strip()
    form = attrs.get("format", "").lower()
    if "zero" in form or text in ("-", "—", "–"):
        number = 0.0
    else:
        if "comma-decimal" in form or "numcommadecimal" in form:
            text = text.replace(".", "").replace(" ", "").replace(",", ".")
        digits = re.sub(r"[,\s\u00a0$€£%()]", "", text)
        if not _NUMBER.fullmatch(digits):
            return None
        number = float(digits)
    number *= 10 ** int(attrs.get("scale", "0") or 0)
    return -number if attrs.get("sign") == "-" else number
