"""The catalogue: every language has every message with the same fields, every key the code asks
for exists, and the Chinese words are the ones a Chinese plant uses."""

from __future__ import annotations

import re
import unicodedata

import pytest

from agent.i18n import (
    DEFAULT_LANGUAGE,
    CatalogueError,
    catalogue,
    catalogue_dir,
    fields_of,
    languages,
    load_messages,
)
from agent.kpi.states import MachineState
from agent.samples import Quality
from tests.conftest import REPO

# words("key", ...) and words.state(...) as the code writes them; f-string keys are checked apart
LITERAL_KEY = re.compile(r"""words\(\s*"([A-Za-z0-9_.\-]+)\"""")


def test_the_languages_are_the_files() -> None:
    assert languages()[0] == DEFAULT_LANGUAGE
    assert set(languages()) == {p.stem for p in catalogue_dir().glob("*.yaml")}
    assert "zh-CN" in languages()


@pytest.mark.parametrize("language", languages())
def test_every_language_has_every_message_with_the_same_fields(language: str) -> None:
    english = load_messages(DEFAULT_LANGUAGE)
    other = load_messages(language)
    assert set(other) == set(english), (set(english) - set(other), set(other) - set(english))
    for key, message in english.items():
        assert fields_of(other[key]) == fields_of(message), (language, key)
        assert other[key].strip() or key == "word.none", (language, key)


def test_every_key_the_code_asks_for_exists() -> None:
    words = catalogue()
    sources = [*(REPO / "agent").rglob("*.py"), REPO / "deploy/grafana/generate.py"]
    asked = {key for path in sources for key in LITERAL_KEY.findall(path.read_text(encoding="utf-8"))}
    assert len(asked) > 50  # the pattern still finds the code's keys
    assert sorted(key for key in asked if not words.has(key)) == []


@pytest.mark.parametrize("language", languages())
def test_every_state_and_quality_has_a_name(language: str) -> None:
    messages = load_messages(language)
    for state in [*MachineState, "unknown"]:
        assert messages.get(f"state.{state}"), (language, state)
    for quality in Quality:
        assert messages.get(f"quality.{quality.value}"), (language, quality)


def test_chinese_state_names_are_the_plant_floor_terms() -> None:
    """MES and andon usage (运行/待机/故障/离线), TPM's 换型调整, the OEE time model's 计划停机 and
    非工作时间 (README: "For Chinese plants")."""
    words = catalogue("zh-CN")
    assert {state.value: words.state(state.value) for state in MachineState} == {
        "producing": "运行",
        "setup": "换型调整",
        "idle": "待机",
        "fault": "故障",
        "planned_stop": "计划停机",
        "no_shift": "非工作时间",
        "offline": "离线",
    }


def test_chinese_messages_use_no_character_of_ambiguous_width() -> None:
    """A CJK terminal draws East Asian "ambiguous" characters (·, —, …) two cells wide while the
    table layout counts one: a table full of them would be drawn wider than laid out."""
    for key, message in load_messages("zh-CN").items():
        ambiguous = [c for c in message if unicodedata.east_asian_width(c) == "A"]
        assert not ambiguous, (key, ambiguous)


def test_a_message_is_filled_in_and_a_missing_one_falls_back_to_english() -> None:
    words = catalogue("zh-CN")
    assert words("run_once.answered", answered=3, total=4) == "4 台设备中 3 台每次读取都有应答"
    english = catalogue()
    assert english("run_once.answered", answered=3, total=4) == "3 of 4 devices answered every read"
    fallback = type(words)("zh-CN", {}, english.messages)
    assert fallback("word.line") == "line"
    with pytest.raises(KeyError, match=r"no message 'no\.such\.key'"):
        words("no.such.key")


def test_an_unknown_language_names_the_ones_there_are() -> None:
    with pytest.raises(CatalogueError, match="no language 'fr'; there are: en, zh-CN"):
        load_messages("fr")
