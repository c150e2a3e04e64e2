"""PII scrubbing for past conversations, applied before anything is chunked or embedded."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# A card number stands alone: not part of a longer identifier (UPS "1Z…", a spaced USPS
# tracking number), so no word character or further digit group may touch it.
_CARD = re.compile(r"(?<![\w-])(?<!\d[ -])(?:\d[ -]?){12,18}\d(?![\w])(?![ -]\d)")
_PHONE = re.compile(
    r"(?<![\w-])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w-])"
    r"|(?<![\w-])\+\d{1,3}(?:[\s.-]?\d{2,4}){2,5}(?![\w-])"
    r"|(?<![\w#-])[2-9]\d{2}[2-9]\d{6}(?![\w-])"  # bare 10-digit NANP numbers
)
_SSN = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")
_STREET = re.compile(
    r"\b\d{1,6}\s+(?:(?:[A-Z][a-z]*|\d+(?:st|nd|rd|th))\.?\s+){1,4}"
    r"(?:St|Street|Ave|Avenue|Rd|Road|Blvd|Boulevard|Ln|Lane|Dr|Drive|Ct|Court|Way|Pl|Place"
    r"|Ter|Terrace|Pkwy|Parkway|Cir|Circle|Hwy|Row|Sq|Square|Close|Crescent)\b\.?(?:,?\s*(?:Apt|Unit|Suite|#)\s*[\w-]+)?",
)


def luhn_ok(digits: str) -> bool:
    """True if ``digits`` passes the Luhn checksum used by payment cards."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[CARD]" if 13 <= len(digits) <= 19 and luhn_ok(digits) else match.group(0)


_ORDER = re.compile(r"\bLM-\d{6,10}\b")


def scrub_pii(text: str, order_numbers: bool = False) -> str:
    """Replace emails, card numbers, phone numbers, SSNs and street addresses with tags.

    Order numbers (``LM-48213907``) are kept unless ``order_numbers`` is set: in a help
    article they are examples, in another customer's conversation they are that customer's.

    >>> scrub_pii("mail me at ann@x.io or call (415) 555-0134")
    'mail me at [EMAIL] or call [PHONE]'
    """
    text = _EMAIL.sub("[EMAIL]", text)
    text = _CARD.sub(_card, text)
    text = _SSN.sub("[SSN]", text)
    text = _PHONE.sub("[PHONE]", text)
    text = _STREET.sub("[ADDRESS]", text)
    return _ORDER.sub("[ORDER]", text) if order_numbers else text
