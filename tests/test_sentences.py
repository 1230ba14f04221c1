from index.sentences import split_sentences


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def test_splits_on_terminal_punctuation_followed_by_a_capital() -> None:
    assert sentences("One thing. Two things! Three? Four") == ["One thing.", "Two things!", "Three?", "Four"]


def test_keeps_abbreviations_and_initials_inside_a_sentence() -> None:
    text = "Gen. Kenneth F. McKenzie Jr. spoke. As Sean R. Roberts writes, the U.S. Army left."
    assert sentences(text) == ["Gen. Kenneth F. McKenzie Jr. spoke.", "As Sean R. Roberts writes, the U.S. Army left."]


def test_closing_quotes_stay_with_their_sentence() -> None:
    text = "He said “no evidence.” Then he left. ‘Why?’ she asked."
    assert sentences(text) == ["He said “no evidence.”", "Then he left.", "‘Why?’ she asked."]


def test_lowercase_continuation_is_not_a_boundary() -> None:
    assert sentences("Prices rose 3.5 per cent. in May. Then fell.") == ["Prices rose 3.5 per cent. in May.", "Then fell."]


def test_offsets_cover_the_text_without_whitespace_and_respect_bounds() -> None:
    text = "  xx Alpha beta.  Gamma delta.\n\nEpsilon zeta.  yy"
    end = text.index("  yy") + 1
    spans = split_sentences(text, 5, end)
    assert [text[s:e] for s, e in spans] == ["Alpha beta.", "Gamma delta.", "Epsilon zeta."]
    assert all(5 <= s < e <= end for s, e in spans)


def test_empty_and_blank_input_give_no_sentences() -> None:
    assert split_sentences("") == []
    assert split_sentences("   \n ") == []


def test_a_detached_full_stop_ends_a_sentence_even_before_lower_case() -> None:
    text = "flow past a flat plate . an experimental study was made . the results agree ."
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "flow past a flat plate .",
        "an experimental study was made .",
        "the results agree .",
    ]
    # attached stops, ellipses and abbreviations before lower case still do not split
    for same in ("he said e.g. the wing", "it was approx. five", "and then ... the end", "a b. c"):
        assert len(split_sentences(same)) == 1, same
