"""PII scrubbing: applied to every text before it can reach a language model.

Replaces e-mail addresses, URLs, @handles, phone and card numbers and long digit runs by short
placeholders. The patterns are deliberately greedy towards privacy: a false positive costs a
few tokens of context, a false negative leaks a person's contact into an embedding cache.
Years, ratings and counts (at most 6 digits, or 4-digit groups like "1995 2001") survive.
"""

from __future__ import annotations

import re

#: Substrings of attribute column names whose values are never textualised (quasi-identifiers).
PII_COLUMN_WORDS: tuple[str, ...] = (
    "email", "e_mail", "mail", "phone", "mobile", "zip", "postcode", "postal", "address",
    "street", "ip_addr", "ipaddr", "ssn", "passport", "password", "surname", "first_name",
    "last_name", "full_name", "username", "user_name", "birth",
)

# Local parts may hold any RFC 5322 "atext" character, not just letters and dots.
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_URL = re.compile(
    r"(?:\b(?:https?|ftp)://|\bwww\d?\.)\S+"
    r"|\b(?:[a-z0-9-]+\.)+(?:com|net|org|io|co|uk|de|fr|ru|info|biz|me|ly|be|tv|fm)"
    r"(?:/\S*)?(?=$|[\s,;)\]'\"])",
    re.IGNORECASE,
)
_HANDLE = re.compile(r"(?<![\w@.])@[A-Za-z0-9_]{2,}")
_CARD = re.compile(r"\b\d{4}(?:[ -]\d{4}){3}\b")
_PHONE = re.compile(
    r"(?<![\w+])\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]?\d{2,4}){1,4}\b"
    r"|(?<!\w)\(\d{3}\)\s?\d{3}[\s.-]?\d{4}\b"
    r"|\b\d{3}[.-]\d{3}[.-]\d{4}\b"
    r"|\b\d{3} \d{3} \d{4}\b"
)
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_DIGITS = re.compile(r"\d{7,}")
_SPACES = re.compile(r"[ \t\r\f\v]+")

# Order matters: e-mails before handles and URLs, URLs before digit runs (ids inside links),
# phones before card numbers (a +country prefix belongs to the phone).
_RULES: tuple[tuple[re.Pattern, str], ...] = (
    (_EMAIL, "[email]"),
    (_URL, "[url]"),
    (_HANDLE, "[user]"),
    (_PHONE, "[phone]"),
    (_CARD, "[number]"),
    (_IPV4, "[ip]"),
    (_DIGITS, "[number]"),
)


def scrub_pii(text: str) -> str:
    """``text`` with contact details and identifiers replaced by placeholders."""
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return _SPACES.sub(" ", text).strip()


def is_pii_column(name: str) -> bool:
    """True for attribute columns whose values identify a person (zip code, e-mail, ...)."""
    key = name.lower().replace("-", "_").replace(" ", "_")
    return any(word in key for word in PII_COLUMN_WORDS)
