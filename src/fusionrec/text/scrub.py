"""PII scrubbing: applied to every text before it can reach a language model.

Replaces e-mail addresses, URLs, @handles, phone and card numbers and long digit runs by short
placeholders. The patterns are deliberately greedy towards privacy: a false positive costs a
few tokens of context, a false negative leaks a person's contact into an embedding cache.
Years, ratings and counts (at most 6 digits, or 4-digit groups like "1995 2001") survive.

Every rule runs in time linear in the text (posted text is untrusted): a pattern never starts
an unbounded scan at every position of a long run. E-mails are found from their ``@`` and
extended leftwards, and bare host names from the end of each run of host-name characters,
so no character is scanned more than a few times.
"""

from __future__ import annotations

import re

#: Substrings of attribute column names whose values are never textualised (quasi-identifiers).
PII_COLUMN_WORDS: tuple[str, ...] = (
    "email", "e_mail", "mail", "phone", "mobile", "zip", "postcode", "postal", "address",
    "street", "ip_addr", "ipaddr", "ssn", "passport", "password", "surname", "first_name",
    "last_name", "full_name", "username", "user_name", "birth",
)

# Local parts may hold any RFC 5322 "atext" character, not just letters and dots. The
# domain is matched from the "@" (each "@" starts one scan); the local part is then the run
# of local-part characters just before it (see _scrub_emails).
_EMAIL_DOMAIN = re.compile(r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_EMAIL_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                         "_.!#$%&'*+/=?^`{|}~-")
_URL = re.compile(r"(?:\b(?:https?|ftp)://|\bwww\d?\.)\S+", re.IGNORECASE)
# Bare host names ("shop.example.com/x"): runs of host characters ending in a known TLD that
# is followed by the end, a space, closing punctuation or a path (see _scrub_hosts).
_HOST_RUN = re.compile(r"[a-z0-9.-]+", re.IGNORECASE)
_TLD_END = re.compile(r"\.(?:com|net|org|io|co|uk|de|fr|ru|info|biz|me|ly|be|tv|fm)$",
                      re.IGNORECASE)
_HOST_FOLLOW = frozenset(",;)]'\"/")
_PATH_END = re.compile(r"\s|$")
_HANDLE = re.compile(r"(?<![\w@.])@[A-Za-z0-9_]{2,}")
_CARD = re.compile(r"\b\d{4}(?:[ -]\d{4}){3}\b")
# The lookahead lets the engine skip positions that cannot start a phone number cheaply.
_PHONE = re.compile(
    r"(?=[+(\d])"
    r"(?:(?<![\w+])\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]?\d{2,4}){1,4}\b"
    r"|(?<!\w)\(\d{3}\)\s?\d{3}[\s.-]?\d{4}\b"
    r"|\b\d{3}[.-]\d{3}[.-]\d{4}\b"
    r"|\b\d{3} \d{3} \d{4}\b)"
)
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_DIGITS = re.compile(r"\d{7,}")
_SPACES = re.compile(r"[ \t\r\f\v]+")

# Order matters: e-mails (first, in scrub_pii) before handles and URLs, URLs before digit
# runs (ids inside links), phones before card numbers (a +country prefix belongs to the phone).
_RULES: tuple[tuple[re.Pattern, str], ...] = (
    (_HANDLE, "[user]"),
    (_PHONE, "[phone]"),
    (_CARD, "[number]"),
    (_IPV4, "[ip]"),
    (_DIGITS, "[number]"),
)


def scrub_pii(text: str) -> str:
    """``text`` with contact details and identifiers replaced by placeholders."""
    text = _scrub_hosts(_URL.sub("[url]", _scrub_emails(text)))
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return _SPACES.sub(" ", text).strip()


def _scrub_emails(text: str) -> str:
    """E-mail addresses replaced by ``[email]``: a domain after "@" preceded by at least one
    local-part character (Unicode word characters too, as ``\\w`` had it). The leftward walk
    stops at the previous address, so every character is visited a bounded number of times."""
    parts, done = [], 0
    for match in _EMAIL_DOMAIN.finditer(text):
        start = match.start()
        while start > done and _is_local(text[start - 1]):
            start -= 1
        if start == match.start():
            continue  # "@domain.tld" without a local part: a handle or plain text
        parts += [text[done:start], "[email]"]
        done = match.end()
    return "".join(parts) + text[done:] if parts else text


def _scrub_hosts(text: str) -> str:
    """Bare host names replaced by ``[url]``: within a run of host characters ending in
    ".tld", the match starts at the first word boundary after the last empty label ("..")
    and takes a following "/path" up to the next whitespace."""
    parts, done = [], 0
    for run in _HOST_RUN.finditer(text):
        if run.start() < done or not _TLD_END.search(run.group()[-6:]):
            continue
        end = run.end()
        if end < len(text) and not (text[end].isspace() or text[end] in _HOST_FOLLOW):
            continue
        start = _host_start(text, run.start(), end)
        if start is None:
            continue
        if end < len(text) and text[end] == "/":
            end = _PATH_END.search(text, end).start()
        parts += [text[done:start], "[url]"]
        done = end
    return "".join(parts) + text[done:] if parts else text


def _host_start(text: str, lo: int, end: int) -> int | None:
    """Leftmost start of ``label.(label.)*tld`` ending at ``end`` at a word boundary."""
    empty = text.rfind("..", lo, end)
    lo = lo if empty < 0 else empty + 2
    tld_dot = text.rfind(".", lo, end)
    word = lambda c: c.isalnum() or c == "_"  # noqa: E731  (what \\b means by a word)
    for p in range(lo, tld_dot):
        if text[p] != "." and (p > 0 and word(text[p - 1])) != word(text[p]):
            return p
    return None


def _is_local(char: str) -> bool:
    return char in _EMAIL_LOCAL or char.isalnum() or char == "_"


def is_pii_column(name: str) -> bool:
    """True for attribute columns whose values identify a person (zip code, e-mail, ...)."""
    key = name.lower().replace("-", "_").replace(" ", "_")
    return any(word in key for word in PII_COLUMN_WORDS)
