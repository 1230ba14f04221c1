"""Furniture rules for cleaning: what web-page boilerplate looks like, as data.

This module owns the *vocabulary* of cleaning — named patterns, small
predicates and thresholds — while ``clean.py`` owns the walk over the lines.
A new publisher's furniture should be added here without touching the walk.

Every rule must hold for any scraped news page: none keys on a file name or on
a sentence that only one page contains. When a pattern could plausibly match
article prose it is bounded by a line length, because losing prose is worse
than keeping a stray caption.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_I = re.IGNORECASE

# A list-item marker at the start of a line: bullets, dashes, or "1." / "1)".
LIST_ITEM = re.compile(r"^(?:[-•*–—·▪►‣◦]\s+|\d{1,3}[.)]\s+)")

# Characters that may close a sentence after its final punctuation.
CLOSERS = "\"'”’»)]"
SENTENCE_END = ".,;:!"


@dataclass(frozen=True)
class Rule:
    """A named furniture test on one stripped line; the name is what ``Removal.rule`` records."""

    name: str
    reason: str
    pattern: re.Pattern[str] | None = None
    predicate: Callable[[str], bool] | None = None
    max_chars: int = 100_000  # longer lines are prose-sized, so the rule declines them

    def matches(self, line: str) -> bool:
        if len(line) > self.max_chars:
            return False
        if self.pattern is not None and not self.pattern.search(line):
            return False
        return self.predicate is None or self.predicate(line)


def _whole_line(*alternatives: str) -> re.Pattern[str]:
    """UI strings are furniture only as a whole line (a list bullet and trailing arrows allowed)."""
    body = "|".join(f"(?:{a})" for a in alternatives)
    return re.compile(rf"^(?:[-•*–·▪►]\s*)?(?:{body})[\s:»›>|]*$", _I)


# --- 1. navigation / UI strings ------------------------------------------------

NAV = Rule(
    "nav",
    "site chrome, share/print buttons, widgets and placeholders rendered as text",
    _whole_line(
        r"accessibility links", r"skip to (?:main )?(?:content|navigation)", r"jump to navigation",
        r"breaking news", r"(?:star )?rating loader.*", r"please wait\.*", r"loading\.*",
        r"rate this (?:article|story|post)", r"click to (?:buy|subscribe|read more)", r"buy now",
        r"\d+\s*x\s*\d+ image", r"xs|sm|md|lg|xl|xxl",
        r"(?:to [^,]{1,40},\s*)?click here\.?", r"click here(?: to [\w ]{1,40})?\.?",
        r"\d+\s*characters? (?:left|remaining)",
        r"share(?: this(?: article| story| post| page)?)?", r"share (?:on|via) \w+",
        r"tweet", r"e-?mail", r"print(?: this(?: article| story| page)?)?",
        r"facebook|twitter|whatsapp|linkedin|telegram|reddit|pinterest", r"copy link|link copied",
        r"subscribe(?: now)?", r"sign (?:in|up)|log ?in|register", r"advertisement|advertising|sponsored|ad",
        r"menu|search|close|home|toggle navigation|back to top",
        r"(?:next|previous) (?:article|story|post)", r"follow us(?: on \w+)?",
        r"read more|continue reading|listen to (?:this )?article",
        r"also read|read also|see also|also see|must read|also watch",
        r"image|photo|video|(?:photo|image) gallery",
    ),
)

# --- 2. teasers for other articles ---------------------------------------------

TEASER = Rule(
    "teaser",
    "a label such as 'ALSO READ |' or 'WATCH:' followed by another article's headline",
    re.compile(
        r"^(?:also read|read also|read more|also watch|watch|see also|also see|must read|"
        r"don['’]t miss|recommended|read next|listen|trending|top stories|more on this|"
        r"related(?: news| story| stories| articles?| videos?| coverage| content)?)"
        r"\s*(?:[|:]|\s[-–—]\s)\s*\S",
        _I,
    ),
    max_chars=300,
)

# --- 3. bare links ---------------------------------------------------------------

BARE_URL = Rule(
    "bare_url",
    "a line that is only a link, maybe labelled 'Source:' or 'Via:'",
    re.compile(
        r"^(?:(?:sources?|via|link|url|originally published (?:at|on|in))\s*[:\-–]?\s*)?"
        r"<?(?:https?://|www\.)\S+$",
        _I,
    ),
)

# --- 4. captions carrying a photo credit ----------------------------------------

_FINAL_PARENS = re.compile(r"\(([^()]*)\)\s*$")
_CREDIT_LEAD = re.compile(
    r"^\s*(?:(?:photos?|images?|pictures?|pics?)\s*(?:[:/]|credits?\b|by\b|courtesy\b|$)"
    r"|credits?\b|courtesy\b|(?:file|representational|representative)\s+(?:photo|image|picture|pic)\b)",
    _I,
)
_CREDIT_AGENCY = re.compile(
    r"getty images|via getty|wikimedia commons|shutterstock|alamy|\bcc[ -]?by\b"
    r"|\b(?:ap|afp|reuters|epa|pti|ani)\s*(?:photo|image)",
    _I,
)


def ends_with_credit(line: str) -> bool:
    """A final '(Photo: …)', '(Credits: …)', '(File photo)', '(… via Wikimedia Commons)' marks a caption."""
    m = _FINAL_PARENS.search(line)
    return bool(m) and bool(_CREDIT_LEAD.search(m.group(1)) or _CREDIT_AGENCY.search(m.group(1)))


CREDITED_CAPTION = Rule(
    "credited_caption",
    "an image caption ending with a parenthetical photo credit (dropped even if it reads as a sentence)",
    predicate=ends_with_credit,
    max_chars=350,  # a paragraph-sized line is prose that happens to end in a credit
)

# --- 5. rating widgets, disclaimers, legal notices, promos ------------------------

AUTHOR_NOTE = Rule(
    "author_note",
    "a parenthesised note about who the writer is, e.g. '(The writer is a … analyst)'",
    re.compile(r"^\((?:the\s+)?(?:writer|author|columnist|contributor)s?\s+(?:is|are|was)\b.*\)$", _I),
    max_chars=400,
)

DISCLAIMER = Rule(
    "disclaimer",
    "the 'views expressed are the author's and do not necessarily reflect …' boilerplate",
    re.compile(
        r"\b(?:views|opinions)\b[^.]{0,80}\bexpressed\b[^.]{0,200}\b(?:do|does) not\s+necessarily\b"
        r"|\b(?:views|opinions)\s+expressed\b[^.]{0,80}\b(?:author|writer|contributor|columnist)['’]?s?"
        r"\s+(?:own|alone|personal)\b"
        r"|^(?:the\s+)?views expressed (?:here |above )?are (?:strictly |purely )?personal\b",
        _I,
    ),
    max_chars=400,
)

LEGAL_NOTICE = Rule(
    "legal_notice",
    "a publisher's notice about being outlawed, or about readers' legal risk for engaging with it",
    re.compile(
        r"\bhas been (?:declared|designated|labell?ed|named)\s+(?:as\s+)?(?:an?\s+)?"
        r"[\"“”'‘’«]?(?:undesirable|foreign agent)"
        r"|\b(?:fines?|imprisonment|prosecution|criminal (?:liability|charges))\b[^.]{0,80}"
        r"\bfor (?:sharing|liking|reposting|commenting|saving|subscribing)\b",
        _I,
    ),
    max_chars=500,
)

PROMO = Rule(
    "promo",
    "a call to subscribe, sign up or follow (newsletter, dispatch, channel, inbox)",
    re.compile(
        r"^(?:subscribe|sign up|signup|register)\b[^.]{0,150}\b(?:newsletters?|dispatch|briefing|digest|"
        r"mailing list|inbox|updates|alerts|podcast|channel)\b"
        r"|^sign up (?:for|to)\b"
        r"|\bdelivered (?:straight |directly )?to your inbox\b"
        r"|^join (?:us|our)\b[^.]{0,60}\b(?:whatsapp|telegram|channel|newsletter|community)\b"
        r"|^follow (?:us|\w+) on (?:facebook|twitter|x|instagram|telegram|whatsapp|google news|linkedin)\b",
        _I,
    ),
    max_chars=300,
)

# --- page metadata that is not article text ---------------------------------------

_BYLINE_LEAD = re.compile(r"^(?:by|authors?|written by|posted by|reported by|words by)\b\s*[:|–-]?\s*", _I)
_NAME_JOINERS = {"and", "&", "de", "van", "von", "al", "bin"}


def is_byline(line: str) -> bool:
    """'By Jane Doe' / 'Author: Jane Doe': the lead word then only a few capitalised name words."""
    m = _BYLINE_LEAD.match(line)
    if not m:
        return False
    words = line[m.end():].replace(",", " ").split()
    return 0 < len(words) <= 6 and all(w[0].isupper() or w.lower() in _NAME_JOINERS for w in words)


BYLINE = Rule(
    "byline", "an author credit line such as 'By Jane Doe' or 'Author: Jane Doe'", predicate=is_byline, max_chars=80
)

_VOLUME = re.compile(r"\b(?:vol\.?|volume)\s*\d", _I)
_ISSUE = re.compile(r"\bissue\b", _I)
_DATELINE = re.compile(r"^(?:published|updated|last updated|posted|date)(?: on)?\s*[:|]\s*\S.*\d", _I)


def is_pub_meta(line: str) -> bool:
    """Journal/issue banners ('Volume 13 Issue 3') and 'Published: <date>' stamps, never a sentence."""
    if line.rstrip(CLOSERS).endswith("."):
        return False
    return bool(_VOLUME.search(line) and _ISSUE.search(line)) or bool(_DATELINE.match(line))


PUB_META = Rule(
    "pub_meta", "issue/volume banners and publication date stamps", predicate=is_pub_meta, max_chars=120
)

NO_WORDS = Rule(
    "no_words",
    "separators and icon residue ('* * *', '|', '—') with no letter or digit",
    predicate=lambda line: not any(ch.isalnum() for ch in line),
)

# Applied to each stripped line on its own, first match wins.
LINE_RULES: tuple[Rule, ...] = (
    NAV, TEASER, BARE_URL, CREDITED_CAPTION, AUTHOR_NOTE, DISCLAIMER,
    LEGAL_NOTICE, PROMO, BYLINE, PUB_META, NO_WORDS,
)

# --- rules that need the neighbouring lines (the walk in clean.py applies them) -------

CAPTION_ALT = Rule(
    "caption_alt",
    "a short title-like line glued above a credited caption is the image's alt text",
)

CAPTION_REPEAT = Rule(
    "caption_repeat",
    "a line repeated on the next line is an image's alt text plus its caption; the first copy is kept",
)

REPEAT = Rule(
    "repeat",
    "a line identical to one already kept (pull quotes, re-rendered captions) adds nothing",
)
REPEAT_MIN_CHARS = 20  # shorter repeats ("Yes.") can be legitimate prose

# An author card: a name line, then a bio starting with that name and a newsroom role.
AUTHOR_CARD = Rule(
    "author_card",
    "an author box: a name line followed by '<Name> is a … correspondent/editor/…'",
    re.compile(r"^(?:(?:Dr|Mr|Ms|Mrs|Prof)\.?\s+)?[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*){1,3}$"),
    max_chars=40,
)
AUTHOR_ROLE = re.compile(
    r"\b(?:correspondent|reporter|journalist|editor|writer|columnist|contributor|author|analyst|"
    r"fellow|researcher|producer|blogger)\b",
    _I,
)

LINK_LIST = Rule(
    "link_list",
    "a run of list items that are links to other articles ('Title - Source [date]', URLs)",
    LIST_ITEM,
)
LINK_RUN_MIN = 3  # items in a run before it can be a link list
LINK_SHARE = 2 / 3  # share of items in the run that must look like links
_LINK_STRONG = re.compile(
    r"https?://|www\.\S|\[(?:last )?updated|\[originally|\[[^\]]*\b\d{4}\]|\((?:blog|press release)\)", _I
)
_SOURCE_SUFFIX = re.compile(r"^(?P<head>.+?)\s[-–—|]\s+(?P<src>[A-Z0-9][^.!?]{0,50}?)\.?$")


def looks_like_link(item: str) -> bool:
    """A list item shaped like a link: URL, bracketed date, or 'Headline words - Publisher'."""
    if _LINK_STRONG.search(item):
        return True
    m = _SOURCE_SUFFIX.match(LIST_ITEM.sub("", item))
    return bool(m) and len(m.group("head").split()) >= 4 and len(m.group("src").split()) <= 6


END_ZONE = Rule(
    "end_zone",
    "a 'related / popular / about the author / comments' marker: the rest of the page is not the article",
    _whole_line(
        r"popular posts(?: from this blog)?", r"most (?:popular|read|viewed|shared)",
        r"related(?: posts?| articles?| stories| news| content| reading| coverage| links)?",
        r"more here", r"more stories|more news|more to explore",
        r"more (?:by|from) (?:the same |this )?(?:author|writer)", r"more (?:by|from|on|in) [\w’' &.-]{1,40}",
        r"about (?:the|this) (?:authors?|writers?|newsletter|contributors?)",
        r"you (?:may|might) (?:also )?(?:like|enjoy|be interested in)",
        r"recommended(?: for you| stories| articles| reading)?", r"(?:what to )?read next|up next",
        r"(?:\d+\s+)?comments?", r"(?:post|leave|add|write) (?:your|a) (?:comment|reply)",
        r"join the (?:conversation|discussion)", r"from around the web|sponsored (?:content|stories|links)",
    ),
)
# A marker is trusted only if the article has begun before it and does not resume after it:
# more than this many long prose lines after a marker means it was an inline teaser box.
ZONE_MAX_PROSE_AFTER = 2
ZONE_PROSE_MIN_CHARS = 120
