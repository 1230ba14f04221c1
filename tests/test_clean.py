"""Tests for index.clean: one small case per furniture rule, prose that must survive, the seeds, invariants."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.clean import clean
from index.types import Cleaned

SEEDS = Path(__file__).parent.parent / "seeds"

# A first line ending in '.' is prose, so these snippets keep the fallback title.
LEAD = "The talks resumed in Doha on Monday after a long pause."
TAIL = "Both sides agreed to meet again within a month."


def check_invariants(text: str, c: Cleaned) -> None:
    spans = []
    for b in c.blocks:
        piece = text[b.start:b.end]
        assert piece and piece == piece.strip()
        assert len(piece.splitlines()) == 1
        spans.append((b.start, b.end))
    assert [s for s in spans] == sorted(spans)
    for r in c.removed:
        assert r.start < r.end and r.rule
        spans.append((r.start, r.end))
    if c.title_span is not None:
        assert text[c.title_span[0]:c.title_span[1]] == c.title
        spans.append(c.title_span)
    spans.sort()
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start, "blocks, removals and the title must not overlap"
    segs = [b.segment for b in c.blocks]
    assert segs == sorted(segs)


def run(text: str, fallback: str = "fallback") -> tuple[list[str], dict[str, str], Cleaned]:
    c = clean(text, fallback)
    check_invariants(text, c)
    kept = [text[b.start:b.end] for b in c.blocks]
    dropped = {text[r.start:r.end]: r.rule for r in c.removed}
    return kept, dropped, c


# --- 1. navigation / UI strings ------------------------------------------------------


@pytest.mark.parametrize("nl", ["\n", "\r\n", "\r"])
def test_nav_lines_dropped(nl):
    lines = ["Accessibility links", "", LEAD, "  Share this article  ", "\t2000characters left", TAIL,
             "Star Rating Loader Please wait...", "  • 16x9 Image", "XS", "SM", "Rate this Article",
             "To find out more, click here.", "Click to buy", "Print"]
    kept, dropped, c = run(nl.join(lines))
    assert kept == [LEAD, TAIL]
    assert set(dropped.values()) == {"nav"}
    assert len(c.removed) == 11
    assert c.blocks[0].segment < c.blocks[1].segment  # furniture between them closes the segment


def test_nav_words_inside_prose_are_kept():
    lines = [LEAD, "Share prices fell sharply after the announcement.",
             "Readers were told to click here for more, but the link was broken.",
             "Print media in the region is shrinking fast.", "Breaking news travels fast in Kabul."]
    kept, dropped, _ = run("\n".join(lines))
    assert kept == lines and not dropped


# --- 2. teasers --------------------------------------------------------------------------


def test_teasers_dropped():
    lines = [LEAD, "", "ALSO READ | Afghanistan top focus in bilateral meetings", "",
             "WATCH | Hunger forces families to sell belongings", "Read More: Why the border matters",
             "  related: Five things to know ", "SEE ALSO – The long road to Doha", TAIL]
    kept, dropped, _ = run("\r\n".join(lines))
    assert kept == [LEAD, TAIL]
    assert list(dropped.values()) == ["teaser"] * 5


def test_teaser_words_in_prose_kept():
    lines = [LEAD, "Watch the border closely, the commander warned his men.",
             "Related talks will continue next week in Tashkent.", "Read more carefully, and the deal looks thin."]
    kept, dropped, _ = run("\n".join(lines))
    assert kept == lines and not dropped


# --- 3. captions repeated on consecutive lines ---------------------------------------------


@pytest.mark.parametrize("nl", ["\n", "\r\n"])
def test_repeated_caption_keeps_first_copy_as_caption(nl):
    cap = "A militia fighter keeps watch at an outpost in Balkh on July 11."
    text = nl.join([LEAD, "", cap + " ", cap + "  ", "", TAIL])
    kept, dropped, c = run(text)
    assert kept == [LEAD, cap, TAIL]
    assert [b.kind for b in c.blocks] == ["prose", "caption", "prose"]
    assert len({b.segment for b in c.blocks}) == 3  # the caption is its own segment
    assert dropped == {cap: "caption_repeat"}


def test_adjacent_different_lines_are_prose_in_one_segment():
    lines = [LEAD, "The delegation flew home on Tuesday.", TAIL]
    kept, dropped, c = run("\n\n".join(lines))
    assert kept == lines and not dropped
    assert {b.kind for b in c.blocks} == {"prose"} and {b.segment for b in c.blocks} == {0}


def test_non_adjacent_repeat_dropped_but_short_repeats_kept():
    para = "The spokesman repeated that no deal had been reached."
    lines = [LEAD, para, "Yes.", TAIL, "Yes.", para]
    kept, dropped, _ = run("\n".join(lines))
    assert kept == [LEAD, para, "Yes.", TAIL, "Yes."]
    assert dropped == {para: "repeat"}


# --- 4. captions with a credit ------------------------------------------------------------


def test_credited_caption_and_alt_text_dropped():
    lines = [LEAD, "", "Emirate flag Taliban",
             "The flag on the embassy wall (Credits: Someone, CC BY-SA 4.0, via Wikimedia Commons)", "",
             "The bomber involved in the blast. (Photo: AMAQ news agency)",
             "Troops at the border (File photo)", "Leaders at the summit (Getty Images)",
             "Smoke over the city (Photo credit: Reuters) ", TAIL]
    kept, dropped, _ = run("\n".join(lines))
    assert kept == [LEAD, TAIL]
    assert dropped["Emirate flag Taliban"] == "caption_alt"
    assert list(dropped.values()).count("credited_caption") == 5


def test_parentheses_in_prose_and_sentence_above_caption_kept():
    above = "The flag was raised at dawn."
    long_para = "Officials described the scene at length. " * 9 + "(Photo: Agency)"
    lines = [LEAD, "He called the picture fake (it was taken in 2019).",
             "The group released a photo (which it later deleted) of the meeting.",
             above, "The flag over the ministry (Photo: Agency)", long_para]
    kept, dropped, _ = run("\n".join(lines))
    assert kept == [LEAD, lines[1], lines[2], above, long_para]
    assert dropped == {"The flag over the ministry (Photo: Agency)": "credited_caption"}


# --- 5. widgets, disclaimers, legal notices, promos ------------------------------------------


def test_disclaimers_legal_notices_and_promos_dropped():
    lines = [LEAD,
             "The views expressed are of the author and do not necessarily represent the opinions of the site.",
             "Views expressed are personal.",
             "ExampleRadio has been declared an “undesirable organization” by the Russian government.",
             "If you are in Russia, please note that you could face fines or imprisonment for sharing, "
             "liking, commenting on, or saving our content.",
             "Subscribe to this weekly dispatch in which our correspondent explains the region.",
             "Sign up for our morning briefing", "(The writer is a Delhi-based security analyst)",
             "By Jane Doe", "Author: Uran Botobekov", "Geopolitical Report Volume 13 Issue 3",
             "Published: 12 March 2021", "* * *", TAIL]
    kept, dropped, _ = run("\n".join(lines))
    assert kept == [LEAD, TAIL]
    assert [dropped[x] for x in lines[1:-1]] == [
        "disclaimer", "disclaimer", "legal_notice", "legal_notice", "promo", "promo", "author_note",
        "byline", "byline", "pub_meta", "pub_meta", "no_words"]


def test_promo_and_legal_vocabulary_in_prose_kept():
    lines = [LEAD, "The views expressed by the delegates varied widely.",
             "Russia has declared several foreign NGOs undesirable, officials said.",
             "Readers who subscribe to the print edition pay more than online readers.",
             "Protesters faced fines for blocking the road.",
             "By launching rocket attacks on Uzbekistan, the group signalled its reach.",
             "(The ministry did not respond to a request for comment.)"]
    kept, dropped, _ = run("\n".join(lines))
    assert kept == lines and not dropped


def test_author_card_dropped_but_name_in_prose_kept():
    bio = "Jane Doe is a correspondent in Prague who covers Chinese foreign policy."
    prose = "Jane Doe is a farmer who lost her land in the flood."
    lines = [LEAD, "", "Jane Doe", "", bio, "", TAIL]
    kept, dropped, _ = run("\n".join(lines))
    assert kept == [LEAD, TAIL]
    assert dropped == {"Jane Doe": "author_card", bio: "author_card"}
    kept, dropped, _ = run("\n".join([LEAD, "Jane Doe", prose]))
    assert kept == [LEAD, "Jane Doe", prose] and not dropped


# --- 6. end-of-article zones -----------------------------------------------------------------


@pytest.mark.parametrize("marker", ["Related Posts", "Popular posts from this blog", "More here:",
                                    "About the Author", "About The Newsletter", "You may also like",
                                    "Comments", "More by the same author"])
def test_end_zone_drops_everything_after(marker):
    after = ["How a cyber attack hampered protesters", "Dr Jane Doe",
             "is an expert on terrorism financing and has written two books on the subject.",
             "Post your Comment", "XS"]
    text = "\n\n".join([LEAD, TAIL, marker, *after])
    kept, dropped, c = run(text)
    assert kept == [LEAD, TAIL]
    assert set(dropped.values()) == {"end_zone"} and len(c.removed) == 1 + len(after)


def test_end_zone_marker_without_article_before_or_with_article_after_drops_only_itself():
    body = [f"Paragraph {i} explains at some length what the delegation discussed in Doha, "
            f"and why the outcome matters for the region as a whole." for i in range(3)]
    kept, dropped, _ = run("\n\n".join(["Related Posts", *body]))
    assert kept == body and dropped == {"Related Posts": "end_zone"}
    kept, dropped, _ = run("\n\n".join([LEAD, "Recommended", *body]))
    assert kept == [LEAD, *body] and dropped == {"Recommended": "end_zone"}


def test_zone_words_in_prose_kept():
    lines = [LEAD, "More here than anywhere else, the talks matter.",
             "Comments by the minister angered the delegation.", "About the author of the plan, little is known."]
    kept, dropped, _ = run("\n".join(lines))
    assert kept == lines and not dropped


# --- 7. lists of links ------------------------------------------------------------------------


def test_link_list_dropped():
    items = ["- Jackboot - Wikipedia, the free encyclopedia [Last Updated On: June 16th, 2016]",
             "- Do we have a legitimate government? - Altoona Mirror",
             "• Focusing on religious oppression in China misses the big picture - CNN",
             "* https://example.com/story/123"]
    kept, dropped, _ = run("\r\n".join([LEAD, *items, TAIL]))
    assert kept == [LEAD, TAIL]
    assert list(dropped.values()) == ["link_list"] * 4


def test_real_bullets_footnotes_and_name_lists_kept():
    bullets = ["    • August 2018 suicide attack at Dalbandian by BLA injuring three Chinese nationals.",
               "    • November 2018 attack on the Chinese Consulate in Karachi by BLA killing four Pakistanis.",
               "    • June 2021 attack on a bus in Kohistan province killing nine Chinese workers"]
    notes = ["  1. Dante Schulz (Oct 2022), ISKP’s Propaganda Threatens Asia’s Security Apparatus,",
             "  2. Kabir Taneja (January 2023), China’s oil gambit in Taliban’s Afghanistan,",
             "  3. The United Nations (May 2022), 13th report of the Monitoring Team"]
    names = ["- Amir Khan Muttaqi - Foreign Minister", "- Sirajuddin Haqqani - Interior Minister",
             "- Mullah Baradar - Deputy Prime Minister"]
    text = "\n".join([LEAD, *bullets, "", TAIL, "", *notes, "", "The cabinet:", *names])
    kept, dropped, _ = run(text)
    assert not dropped
    assert kept == [LEAD, *(b.strip() for b in bullets), TAIL, *(n.strip() for n in notes),
                    "The cabinet:", *names]


# --- 8. bare URLs ------------------------------------------------------------------------------


def test_bare_urls_dropped():
    lines = [LEAD, "Source: https://www.example.com/news/story-1875479", "https://example.org/a?b=c",
             "  www.example.net/page  ", TAIL]
    kept, dropped, _ = run("\n".join(lines))
    assert kept == [LEAD, TAIL]
    assert list(dropped.values()) == ["bare_url"] * 3


def test_url_inside_prose_kept():
    lines = [LEAD, "The site https://example.com was down for hours.", "Source: officials in Kabul."]
    kept, dropped, _ = run("\n".join(lines))
    assert kept == lines and not dropped


# --- title, headings, segments -------------------------------------------------------------------


def test_title_is_first_real_line_after_furniture():
    text = "Accessibility links\n\nBreaking News\n\nExplainer: Why Is China Talking?\n\n" + LEAD
    kept, _, c = run(text)
    assert c.title == "Explainer: Why Is China Talking?"
    assert text[c.title_span[0]:c.title_span[1]] == c.title
    assert kept == [LEAD]


def test_prose_first_line_uses_fallback_title():
    kept, _, c = run(LEAD + "\n" + TAIL, fallback="doc-7")
    assert (c.title, c.title_span) == ("doc-7", None)
    assert kept == [LEAD, TAIL]


@pytest.mark.parametrize("nl", ["\n", "\r\n", "\r"])
def test_headings_become_metadata(nl):
    text = nl.join(["Headline Of The Story", "", LEAD, "", "What Is ETIM?", "",
                    "Central to the engagement are concerns over militants.", TAIL, "",
                    "Global Jihad and Taliban Nationalism", "", "  The report was published in May.  "])
    kept, dropped, c = run(text)
    assert c.title == "Headline Of The Story" and not dropped
    assert kept == [LEAD, "Central to the engagement are concerns over militants.", TAIL,
                    "The report was published in May."]
    assert [b.heading for b in c.blocks] == [None, "What Is ETIM?", "What Is ETIM?",
                                             "Global Jihad and Taliban Nationalism"]
    assert [b.segment for b in c.blocks] == [0, 1, 1, 2]


def test_heading_shaped_prose_is_kept():
    lines = [LEAD, "On paper, Beijing and the Taliban are strange bedfellows.",
             "So what’s driving the two sides together?", "“We will see,” he said",
             "Stability is the top concern", TAIL]
    kept, dropped, c = run("\n\n".join(lines[:-1]) + "\n" + lines[-1])
    assert kept == lines and not dropped  # "Stability …" has no blank line after it: not a paragraph
    assert {b.heading for b in c.blocks} == {None}


def test_unicode_padding_bom_and_zero_width_are_trimmed():
    breaks = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
    spaces = [ch for ch in map(chr, range(0x3001)) if ch.isspace() and ch not in breaks]
    text = "\ufeffHeadline Here\u200b\n\u200b\n" + "\n".join(f"{ch}{LEAD}{ch}" for ch in spaces)
    kept, dropped, c = run(text)
    assert c.title == "Headline Here"
    assert kept[0] == LEAD and len(kept) == 1  # the rest are repeats of the same line
    assert set(dropped.values()) == {"repeat"}


# --- the seeds -------------------------------------------------------------------------------------

FURNITURE = ["ALSO READ", "WATCH |", "Last Updated On", "Popular posts", "Related Posts", "characters left",
             "Star Rating", "Rate this Article", "Post your Comment", "click here", "Accessibility links",
             "undesirable organization", "views expressed", "Subscribe to this", "Source: http", "(Photo:",
             "(Credits:", "Author: Uran", "Volume 13 Issue 3", "Click to buy", "Date :", "About the Author",
             "About The Newsletter", "16x9 Image", "fines or imprisonment", "is an RFE/RL correspondent",
             "More here:", "The writer is"]

TITLES = {
    "000": "Taliban’s growing proximity with China is an opportunity ISKP trying to leverage",
    "001": None,  # prose first line: the fallback
    "002": "Dilemma of Central Asian Jihadists between IS-K and Taliban",
    "003": "Islamic State in Khorasan Province’s Central Asia Outreach: Its Potential Fallout on China",
    "004": "Explainer: Why Is China Talking To The Taliban?",
}

ARTICLE = {
    "000": ["Apart from the geopolitical changes since 2001, the role of China, too, is different today.",
            "We are already seeing Taliban members regularly meeting Chinese officials.",
            "Faran Jeffrey added: “When we mention Uyghurs in Afghanistan",
            "The Voice of Hind praising the Uyghur bomber.",
            "Some experts said that with China already having put so much at stake"],
    "001": ["As U.S. troops draw down in Afghanistan, Chinese officials have stepped up contacts",
            "On paper, Beijing and the Taliban are strange bedfellows.",
            "So whats driving the two sides together?",
            "building a strong regional security presence [to cover]\" for any outcome."],
    "002": ["The Taliban’s pragmatic diplomacy and gradual departure from the Jihadi ideology",
            "The establishment of “warm relations” by the Taliban’s interim government",
            "Analysis of the jihadi media shows that the recent brutal and mysterious killing",
            "IS-K threatens the U.S.",
            "The White House might play the card of economic partnership"],
    "003": ["In the last few years, Chinese interests in Afghanistan-Pakistan (Af-Pak) region have come under",
            "• August 2018 suicide attack at Dalbandian by BLA injuring three Chinese nationals.",
            "• June 2021 attack on a bus in Kohistan, Northwestern Khyber-Pakhtunkhwa province killing nine",
            "1. Dante Schulz (Oct 2022), ISKP’s Propaganda Threatens Asia’s Security Apparatus,",
            "6. Abdul Rahman Makki, whose designation in UN was put on “Technical Hold”",
            "Any direct kinetic measure by the Chinese may not be welcomed in Afghanistan",
            "On the other hand, China along with the Taliban could use proxies on the ground"],
    "004": ["As U.S. troops draw down in Afghanistan, Chinese officials have stepped up contacts",
            "So what’s driving the two sides together?",
            "Stability, specifically its own, is the top concern for China.",
            "An Afghan militia fighter keeps watch at an outpost",
            "The existence of Uyghur extremist groups",
            "building a strong regional security presence [to cover]\" for any outcome."],
}


def _seed(prefix: str) -> tuple[str, Cleaned]:
    [path] = SEEDS.glob(f"{prefix}_*.txt")
    text = path.read_text(encoding="utf-8")
    c = clean(text, path.stem)
    check_invariants(text, c)
    return text, c


@pytest.mark.parametrize("prefix", sorted(TITLES))
def test_seed_keeps_no_furniture(prefix):
    text, c = _seed(prefix)
    for b in c.blocks:
        piece = text[b.start:b.end]
        assert not [f for f in FURNITURE if f.lower() in piece.lower()], piece


@pytest.mark.parametrize("prefix", sorted(TITLES))
def test_seed_keeps_article_sentences(prefix):
    text, c = _seed(prefix)
    for sentence in ARTICLE[prefix]:
        at = text.find(sentence)
        assert at >= 0, sentence
        assert any(b.start <= at and at + len(sentence) <= b.end for b in c.blocks), sentence


@pytest.mark.parametrize("prefix", sorted(TITLES))
def test_seed_blocks_are_unique(prefix):
    text, c = _seed(prefix)
    pieces = [text[b.start:b.end] for b in c.blocks]
    assert len(pieces) == len(set(pieces))


@pytest.mark.parametrize("prefix", sorted(TITLES))
def test_seed_titles(prefix):
    text, c = _seed(prefix)
    [path] = SEEDS.glob(f"{prefix}_*.txt")
    assert c.title == (TITLES[prefix] or path.stem)
    assert (c.title_span is None) == (TITLES[prefix] is None)


def test_seed_004_headings_and_captions():
    text, c = _seed("004")
    headings = {b.heading for b in c.blocks}
    assert {"Why Are They Talking Now?", "Can Beijing Work With The Taliban?", "What Is ETIM?",
            "What Is China’s Game Plan?"} <= headings
    [etim] = [b for b in c.blocks if text[b.start:b.end].startswith("Central to Beijing’s engagement")]
    assert etim.heading == "What Is ETIM?"
    captions = [b for b in c.blocks if b.kind == "caption"]
    assert len(captions) == 4
    for cap in captions:
        assert [b for b in c.blocks if b.segment == cap.segment] == [cap]


def test_seed_002_and_003_headings():
    _, c2 = _seed("002")
    assert {"Factionalization of IMU", "Global Jihad and Taliban Nationalism",
            "Foggy Future of Central Asian Jihadism"} <= {b.heading for b in c2.blocks}
    _, c3 = _seed("003")
    assert {"Increasing Attacks on Chinese Interests", "ISKP’s Central Asia Outreach"} <= {
        b.heading for b in c3.blocks}


# --- properties ----------------------------------------------------------------------------------------

_SAMPLE_LINES = [LEAD, TAIL, "", " ", "What Is ETIM?", "Related Posts", "ALSO READ | x", "XS",
                 "- Title words go here - Source [Last Updated On: June 1st, 2016]", "• 1. item",
                 "Caption text (Photo: x)", "Short alt", "https://x.y", "Jane Doe", "Jane Doe is a reporter.",
                 "(The writer is x)", "Comments", "\u00a0\u2003", "é\u0301", "\t• bullet"]
_SEPARATORS = ["\n", "\r\n", "\r", "\n\n", "\u2028", "\x85", " \n "]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_keeps_invariants(text):
    check_invariants(text, clean(text, "t"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_SAMPLE_LINES) | st.text(max_size=30),
                          st.sampled_from(_SEPARATORS)), max_size=30))
def test_page_like_text_keeps_invariants(parts):
    text = "".join(line + sep for line, sep in parts)
    check_invariants(text, clean(text, "t"))
