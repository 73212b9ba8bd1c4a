"""Characters that look like ASCII but are not (agent/config/lookalikes.py), in did-you-mean.

The messages in context are golden cases (tests/cases/lookalikes, tests/cases/fullwidth-colon)."""

from __future__ import annotations

from agent.config.lookalikes import as_ascii, lookalikes
from agent.config.suggest import did_you_mean

CYRILLIC_A = "\u0430"


def test_a_word_with_a_lookalike_is_told_which_character_and_matched_as_meant() -> None:
    hint = did_you_mean(f"gr{CYRILLIC_A}nd", ["grind", "grinder"])
    assert hint == (
        f"; 'gr{CYRILLIC_A}nd' contains the non-ASCII '{CYRILLIC_A}' (U+0430 CYRILLIC SMALL LETTER A) "
        "at character 3, a look-alike of 'a': retype it in ASCII; did you mean 'grind'?"
    )


def test_a_choice_with_a_lookalike_is_never_proposed_as_the_word_meant() -> None:
    spoofed = f"gr{CYRILLIC_A}nder"
    hint = did_you_mean("grander", [spoofed, "grinder"])
    assert hint.startswith(f"; '{spoofed}' looks the same but is not: '{spoofed}' contains the non-ASCII")
    assert "did you mean" not in hint
    # a choice with a look-alike that is not the word's twin is left out, not offered
    assert did_you_mean("grandest", [spoofed]) == ""


def test_full_width_forms_fold_to_ascii_and_chinese_text_is_not_a_lookalike() -> None:
    assert as_ascii("\uff55\uff4e\uff49\uff54\uff1a\uff11\uff12") == "unit:12"
    assert lookalikes("磨床一号") == []
    assert [item.char for item in lookalikes("line\u3000one")] == ["\u3000"]  # the ideographic space
    assert did_you_mean("\uff55\uff4e\uff49\uff54", ["unit", "node"]).endswith("did you mean 'unit'?")


def test_a_long_word_of_lookalikes_gives_a_short_message() -> None:
    word = "\uff10" * 5000  # a pasted column of full-width zeros
    hint = did_you_mean(word, ["unit"])
    assert len(hint) < 400
    assert hint.endswith("and 4997 more: retype them in ASCII")
