"""Tests for locales.zawgyi: Zawgyi detection and Zawgyi -> Unicode conversion.

The Zawgyi inputs are written as code-point escapes, because in a Unicode font they look
like garbled Burmese. Each one was checked against ICU's CLDR ``Zawgyi-my`` transform
(``uconv -x Zawgyi-my``), which gives the same Unicode text as expected here. Some are
spelled the way Zawgyi keyboards produce them, as opposed to ICU's ``my-Zawgyi`` output:
digit zero ``U+1040`` typed for the letter wa, the tall ra ``U+1090``, the dot below ``U+1094``,
and medials typed in either order.
"""

from __future__ import annotations

import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from locales import zawgyi as zawgyi_module
from locales.zawgyi import ZAWGYI_THRESHOLD, to_unicode_burmese, zawgyi_probability

ZAWGYI_TO_UNICODE = [
    pytest.param(
        # my employer took my passport
        "\u1021\u101c\u102f\u1015\u1039\u101b\u103d\u1004\u1039\u1000 "
        "\u1000\u103c\u107d\u1014\u1039\u1031\u1010\u102c\u1037\u1039 "
        "\u1015\u1010\u1039\u1005\u1039\u1015\u102d\u102f\u1094\u1000\u102d\u102f "
        "\u101e\u102d\u1019\u1039\u1038\u1011\u102c\u1038\u1010\u101a\u1039\u104b",
        "အလုပ်ရှင်က ကျွန်တော့် ပတ်စ်ပို့ကို သိမ်းထားတယ်။",
        id="my employer took my passport",
    ),
    pytest.param(
        # I have not been paid yet
        "\u1000\u103c\u107d\u1014\u1039\u1019 \u101c\u1005\u102c "
        "\u1019\u101b\u1031\u101e\u1038\u1015\u102b\u104b",
        "ကျွန်မ လစာ မရသေးပါ။",
        id="I have not been paid yet",
    ),
    pytest.param(
        # no wages for three whole months
        "\u101e\u1036\u102f\u1038\u101c\u101c\u1036\u102f\u1038 \u101c\u1005\u102c "
        "\u1019\u1031\u1015\u1038\u1018\u1030\u1038\u104b",
        "သုံးလလုံး လစာ မပေးဘူး။",
        id="no wages for three whole months",
    ),
    pytest.param(
        # I have to work 12 hours a day
        "\u1010\u1005\u1039\u101b\u1000\u1039\u1000\u102d\u102f \u1041\u1042 "
        "\u1014\u102c\u101b\u102e "
        "\u1021\u101c\u102f\u1015\u1039\u101c\u102f\u1015\u1039\u101b\u1010\u101a\u1039\u104b",
        "တစ်ရက်ကို ၁၂ နာရီ အလုပ်လုပ်ရတယ်။",
        id="I have to work 12 hours a day",
    ),
    pytest.param(
        # overtime is not paid
        "\u1021\u1001\u103a\u102d\u1014\u1039\u1015\u102d\u102f\u101c\u102f\u1015\u1039\u1001 "
        "\u1019\u1031\u1015\u1038\u1018\u1030\u1038\u104b",
        "အချိန်ပိုလုပ်ခ မပေးဘူး။",
        id="overtime is not paid",
    ),
    pytest.param(
        # I am afraid, I need help
        "\u1000\u107d\u103c\u1014\u1039\u1031\u1010\u102c\u1039 "
        "\u1031\u107e\u1000\u102c\u1000\u1039\u1010\u101a\u1039\u104a "
        "\u1021\u1000\u1030\u1021\u100a\u102e "
        "\u101c\u102d\u102f\u1001\u103a\u1004\u1039\u1015\u102b\u1010\u101a\u1039\u104b",
        "ကျွန်တော် ကြောက်တယ်၊ အကူအညီ လိုချင်ပါတယ်။",
        id="I am afraid, I need help",
    ),
    pytest.param(
        # there is no safety at the factory
        "\u1005\u1000\u1039\u1090\u1036\u102f\u1019\u103d\u102c "
        "\u101c\u1036\u102f\u107f\u1001\u1036\u1033\u1031\u101b\u1038 "
        "\u1019\u101b\u103d\u102d\u1018\u1030\u1038\u104b",
        "စက်ရုံမှာ လုံခြုံရေး မရှိဘူး။",
        id="there is no safety at the factory",
    ),
    pytest.param(
        # they beat the workers
        "\u1040\u1014\u1039\u1011\u1019\u1039\u1038\u1031\u1010\u103c\u1000\u102d\u102f "
        "\u1090\u102f\u102d\u1000\u1039\u108f\u103d\u1000\u1039\u1010\u101a\u1039\u104b",
        "ဝန်ထမ်းတွေကို ရိုက်နှက်တယ်။",
        id="they beat the workers",
    ),
    pytest.param(
        # they do not let me go to the hospital
        "\u1031\u1006\u1038\u1090\u1036\u102f\u1000\u102d\u102f "
        "\u101e\u103c\u102c\u1038\u1001\u103c\u1004\u1037\u1039 "
        "\u1019\u1031\u1015\u1038\u1018\u1030\u1038\u104b",
        "ဆေးရုံကို သွားခွင့် မပေးဘူး။",
        id="they do not let me go to the hospital",
    ),
    pytest.param(
        # hello, thank you
        "\u1019\u1002\u1064\u101c\u102c\u1015\u102b\u104a "
        "\u1031\u1000\u103a\u1038\u1007\u1030\u1038\u1010\u1004\u1039\u1015\u102b\u1010\u101a"
        "\u1039\u104b",
        "မင်္ဂလာပါ၊ ကျေးဇူးတင်ပါတယ်။",
        id="hello, thank you",
    ),
    pytest.param(
        # I only get 50,000 kyat
        "\u101c\u1005\u102c \u1045\u1040\u1040\u1040\u1040 "
        "\u1000\u103a\u1015\u1039\u1015\u1032 \u101b\u1010\u101a\u1039\u104b",
        "လစာ ၅၀၀၀၀ ကျပ်ပဲ ရတယ်။",
        id="I only get 50,000 kyat",
    ),
    pytest.param(
        # they will not give my things back
        "\u1015\u1005\u1065\u100a\u1039\u1038\u1031\u1010\u103c "
        "\u103b\u1015\u1014\u1039\u1019\u1031\u1015\u1038\u1018\u1030\u1038\u104b",
        "ပစ္စည်းတွေ ပြန်မပေးဘူး။",
        id="they will not give my things back",
    ),
    pytest.param(
        # it is noisy every day, I cannot sleep
        "\u1031\u1014\u1094\u1010\u102d\u102f\u1004\u1039\u1038 "
        "\u1006\u1030\u100a\u1036\u1010\u101a\u1039\u104a "
        "\u1021\u102d\u1015\u1039\u101c\u102d\u102f\u1094\u1019\u101b\u1018\u1030\u1038\u104b",
        "နေ့တိုင်း ဆူညံတယ်၊ အိပ်လို့မရဘူး။",
        id="it is noisy every day, I cannot sleep",
    ),
]

ZAWGYI_SENTENCES = [param.values[0] for param in ZAWGYI_TO_UNICODE]
UNICODE_SENTENCES = [param.values[1] for param in ZAWGYI_TO_UNICODE]

UNICODE_EXTRA = [
    "မြန်မာ",
    "နိုင်ငံကူးလက်မှတ်",
    "ဗုဒ္ဓ",  # Pali stacking with U+1039
    "ကမ္ဘာ",
    "ဘာသာစကား",  # encoded the same in both; the detector rates it above 0.95
    "ကျွန်ုပ်တို့ဟာ သင့်နာမည်၊ ဖုန်းနံပါတ်၊ ချတ်အက်ပ် အကောင့်တွေကို မသိမ်းပါဘူး။",
    "မႂ်ႇသုင်ၶႃႈ",  # Shan (Unicode), which uses code points that Zawgyi reuses
    "မ",
    "၁၀ ရက်",
]

ENGLISH = [
    "My employer took my passport.",
    "I have not been paid for 3 months!",
    "Call me at +66 81 234 5678 / line: worker_01",
    "Überstunden werden nicht bezahlt. 残業代が払われない。 ค่าจ้างไม่ได้จ่าย",
    "   \n\t  ",
]


def _myanmar(char: str) -> bool:
    code = ord(char)
    return 0x1000 <= code <= 0x109F or 0xA9E0 <= code <= 0xA9FF or 0xAA60 <= code <= 0xAA7F


def _without_myanmar(text: str) -> str:
    return "".join(char for char in text if not _myanmar(char))


@pytest.mark.parametrize(("zawgyi", "unicode"), ZAWGYI_TO_UNICODE)
def test_zawgyi_sentence_is_detected_and_converted(zawgyi: str, unicode: str) -> None:
    assert zawgyi != unicode
    assert zawgyi_probability(zawgyi) >= ZAWGYI_THRESHOLD
    assert to_unicode_burmese(zawgyi) == unicode


@pytest.mark.parametrize("text", UNICODE_SENTENCES + UNICODE_EXTRA)
def test_unicode_burmese_comes_back_byte_identical(text: str) -> None:
    result = to_unicode_burmese(text)
    assert result.encode("utf-8") == text.encode("utf-8")


@pytest.mark.parametrize("text", UNICODE_SENTENCES)
def test_unicode_sentences_score_low(text: str) -> None:
    assert zawgyi_probability(text) < 0.05


@pytest.mark.parametrize("text", ENGLISH)
def test_text_without_burmese_is_unchanged_and_scores_zero(text: str) -> None:
    assert zawgyi_probability(text) == 0.0
    assert to_unicode_burmese(text) == text


def test_empty_string() -> None:
    assert zawgyi_probability("") == 0.0
    assert to_unicode_burmese("") == ""


def test_probability_is_between_zero_and_one() -> None:
    for text in ZAWGYI_SENTENCES + UNICODE_SENTENCES + UNICODE_EXTRA:
        assert 0.0 <= zawgyi_probability(text) <= 1.0


def test_mixed_english_and_zawgyi_converts_only_the_burmese() -> None:
    passport_zg, passport_uni = ZAWGYI_SENTENCES[0], UNICODE_SENTENCES[0]
    paid_zg, paid_uni = ZAWGYI_SENTENCES[1], UNICODE_SENTENCES[1]
    template = (
        "Hello! {0}\n"
        'Passport no. MA1234567 (expires 2027-01-31), boss = "Mr. K" 🙏\t{1}\r\n'
        "https://example.org/?q=1&x=2  — thanks"
    )
    text = template.format(passport_zg, paid_zg)
    result = to_unicode_burmese(text)
    assert result == template.format(passport_uni, paid_uni)
    assert _without_myanmar(result) == _without_myanmar(text)


def test_english_word_inside_a_zawgyi_sentence_is_kept() -> None:
    zawgyi = (
        "\u1021\u101c\u102f\u1015\u1039\u101b\u103d\u1004\u1039\u1000 "
        "\u1000\u103c\u107d\u1014\u1039\u1031\u1010\u102c\u1037\u1039 "
        "passport \u1000\u102d\u102f \u101e\u102d\u1019\u1039\u1038"
        "\u1011\u102c\u1038\u1010\u101a\u1039\u104b"
    )
    expected = "အလုပ်ရှင်က ကျွန်တော့် passport ကို သိမ်းထားတယ်။"
    assert to_unicode_burmese(zawgyi) == expected


def test_mixed_english_and_unicode_burmese_is_unchanged() -> None:
    text = f"Hello! {UNICODE_SENTENCES[0]} Passport no. MA1234567. {UNICODE_SENTENCES[1]}"
    assert to_unicode_burmese(text) == text


def test_zero_width_space_and_emoji_between_zawgyi_words_are_kept() -> None:
    zawgyi = (
        "\u1031\u1000\u103a\u1038\u1007\u1030\u1038"  # "thank" + U+200B
        "\u200b\u1010\u1004\u1039\u1015\u102b\u1010\u101a\u1039 🙏"
    )
    assert to_unicode_burmese(zawgyi) == "ကျေးဇူး\u200bတင်ပါတယ် 🙏"


def test_myanmar_digits_stay_digits() -> None:
    # "10 days", "the 10th": a digit zero next to another digit, or standing alone, is a digit.
    zawgyi = "\u1041\u1040 \u101b\u1000\u1039 \u1040 \u101b\u1000\u1039\u1031\u1014\u1094 \u104b"
    assert to_unicode_burmese(zawgyi) == "၁၀ ရက် ၀ ရက်နေ့ ။"


def test_digit_zero_typed_for_wa_after_a_letter_is_converted() -> None:
    # "life is hard": Zawgyi users often type the digit zero for the look-alike letter wa.
    zawgyi = "\u1018\u1040 \u1001\u1000\u1039\u1010\u101a\u1039"
    assert to_unicode_burmese(zawgyi) == "ဘဝ ခက်တယ်"


def test_ambiguous_short_text_is_left_alone() -> None:
    # A single Zawgyi word is too short to be sure about; it is not converted.
    world = "\u1000\u1019\u1093\u102c"  # "world", Zawgyi
    assert zawgyi_probability(world) < ZAWGYI_THRESHOLD
    assert to_unicode_burmese(world) == world


def test_conversion_is_idempotent() -> None:
    for zawgyi in ZAWGYI_SENTENCES:
        once = to_unicode_burmese(zawgyi)
        assert to_unicode_burmese(once) == once


def test_detector_is_loaded_once_and_without_warnings() -> None:
    zawgyi_module._detector.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = zawgyi_module._detector()
    assert caught == []
    assert zawgyi_module._detector() is first


def _repeat_to(sentences: list[str], length: int) -> list[str]:
    out: list[str] = []
    while sum(len(s) + 1 for s in out) < length:
        out.extend(sentences)
    return out


def test_long_zawgyi_text_is_converted_whole() -> None:
    """A 10,000-character message converts line for line (its speed is measured by
    ``bench/zawgyi_bench.py``, not here: a timed test fails on a loaded machine)."""
    count = len(_repeat_to(ZAWGYI_SENTENCES, 10_000))
    zawgyi_sentences = (ZAWGYI_SENTENCES * count)[:count]
    unicode_sentences = (UNICODE_SENTENCES * count)[:count]
    text = "\n".join(zawgyi_sentences)
    assert len(text) >= 10_000
    assert to_unicode_burmese(text) == "\n".join(unicode_sentences)


@pytest.mark.parametrize(
    "text",
    [
        "\n".join(_repeat_to(UNICODE_SENTENCES, 10_000)),
        " ".join(_repeat_to(ENGLISH[:3], 10_000)),
    ],
    ids=["unicode", "english"],
)
def test_long_unicode_or_english_text_is_unchanged(text: str) -> None:
    assert len(text) >= 10_000
    assert to_unicode_burmese(text) == text


_NON_MYANMAR = st.text(
    st.characters(exclude_categories=("Cs",)).filter(lambda char: not _myanmar(char)),
    max_size=20,
)


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    st.lists(
        st.tuples(_NON_MYANMAR, st.integers(min_value=0, max_value=len(ZAWGYI_SENTENCES) - 1)),
        max_size=4,
    ),
    _NON_MYANMAR,
)
def test_only_burmese_runs_ever_change(pieces: list[tuple[str, int]], tail: str) -> None:
    text = "".join(filler + ZAWGYI_SENTENCES[i] for filler, i in pieces) + tail
    converted = "".join(filler + UNICODE_SENTENCES[i] for filler, i in pieces) + tail
    result = to_unicode_burmese(text)
    assert _without_myanmar(result) == _without_myanmar(text)
    assert result in (text, converted)
