"""Answer extraction and checking: the pure rules."""

from __future__ import annotations

from fractions import Fraction

import pytest

from selftaught.tasks.answers import (
    boxed_all,
    extract_choice,
    extract_math,
    extract_number,
    extract_string,
    first_number,
    format_number,
    gsm8k_gold,
    last_boxed,
    normalize_label,
    normalize_number,
    normalize_string,
    numbers_equal,
)


# -- numbers ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,000", "1000"),
        ("3.0", "3"),
        ("-10", "-10"),
        ("$1,080.", "1080"),
        (".5", "0.5"),
        ("3/4", "0.75"),
        ("1/3", "1/3"),
        ("x = 5", "5"),
        ("\\frac{7}{2}", "3.5"),
        ("\\$1{,}000", "1000"),
        ("50\\%", "50"),
        ("12 \\text{ apples}", "12"),
        ("2,520,000", "2520000"),
        ("3 \\times 4 = 12", "12"),
        ("no number", None),
    ],
)
def test_normalize_number(text, expected):
    assert normalize_number(text) == expected


def test_hyphens_and_bad_groups_are_not_signs_or_thousands():
    assert first_number("10-3") == 10
    assert first_number("1,00") == 1  # not a thousands group
    assert first_number("3, 4") == 3


def test_format_number_is_exact():
    assert format_number(Fraction(1, 8)) == "0.125"
    assert format_number(Fraction(-5, 2)) == "-2.5"
    assert format_number(Fraction(2, 3)) == "2/3"
    assert numbers_equal("1000", "1000.00") and numbers_equal("0.5", "1/2")
    assert not numbers_equal("3", "4") and not numbers_equal(None, "4")


def test_gsm8k_gold():
    assert gsm8k_gold("So 2 + 2 = <<2+2=4>>4.\n#### 1,080") == "1080"
    assert gsm8k_gold("#### -3") == "-3"
    with pytest.raises(ValueError, match="no '####'"):
        gsm8k_gold("The answer is 4")
    with pytest.raises(ValueError, match="no number after"):
        gsm8k_gold("#### lots")


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        (" She has 3 + 4 = 7 apples.\nThe answer is 7.", "7"),
        (" 10 * 100 = 1,000 dollars.\nThe answer is $1,000.", "1000"),
        ("So the total is \\boxed{42}.", "42"),
        ("Half of 9 is 4.5\n#### 4.5", "4.5"),
        ("I first thought the answer is 5, but 2 + 4 = 6, so the answer is 6.", "6"),
        ("The answer is 6 because 2 * 3 = 6 and not 7.", "6"),
        ("The answer is x = 12.", "12"),
        ("The answer is 5 + 2 = 7 apples.", "7"),
        ("The answer is 6 because 2 * 3 = 5 and not 7.", "6"),
        ("He walks 3 miles, then 4 more: 7 miles", "7"),  # the last number
        ("The answer is \\boxed{\\frac{1}{2}}.", "0.5"),
        ("No idea.", None),
    ],
)
def test_extract_number(completion, expected):
    assert extract_number(completion) == expected


# -- boxes and math answers ---------------------------------------------------------------
def test_boxed_balances_nested_braces():
    text = "a \\boxed{\\frac{1}{2}} and \\boxed{\\left( 3, \\frac{\\pi}{2} \\right)} \\boxed 7."
    assert boxed_all(text) == ["\\frac{1}{2}", "\\left( 3, \\frac{\\pi}{2} \\right)", "7."]
    assert last_boxed("no box") is None
    assert last_boxed("\\boxed{unclosed") is None


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("So\n\nThe answer is $\\boxed{\\frac{14}{3}}$.", "\\frac{14}{3}"),
        ("The answer is $p - q$.", "p - q"),
        ("the answer is \\(x^2\\)", "x^2"),
        ("The answer is: 5", "5"),
        ("I computed 5 but wrote no final answer", None),
        ("\\boxed{}", None),
        # the full stop inside the box: every integer gold of MATH500 failed this way
        ("The answer is $\\boxed{42.}$", "42"),
        ("\\boxed{ 3.5 . }", "3.5"),
        ("\\boxed{1, 2, \\ldots}", "1, 2, \\ldots"),
        ("\\boxed{1, 2, ...}", "1, 2, ..."),  # an ellipsis is not a full stop
        ("\\boxed{.}", None),
    ],
)
def test_extract_math(completion, expected):
    assert extract_math(completion) == expected


# -- strings and choices -------------------------------------------------------------------
def test_strings():
    assert normalize_string('  "Paris". ') == "paris"
    assert normalize_string("New   York") == "new york"
    assert extract_string("It is in France.\nThe answer is Paris.") == "paris"
    assert extract_string("\\boxed{Mars}") == "mars"
    assert extract_string("Thinking...\nBlue\n") == "blue"
    assert extract_string("") is None


@pytest.mark.parametrize(
    ("label", "expected"), [("b", "B"), ("(C)", "C"), ("2", "B"), (4, "D"), ("E.", "E")]
)
def test_normalize_label(label, expected):
    assert normalize_label(label) == expected


@pytest.mark.parametrize("label", ["", "Z", "0", "AB", "11"])
def test_normalize_label_rejects(label):
    with pytest.raises(ValueError, match="not a choice label"):
        normalize_label(label)


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("Baskets hold things. Therefore, the answer is basket (b).", "B"),  # STaR's format
        ("The answer is (C).", "C"),
        ("The answer is D.", "D"),
        ("The answer is B because it is right.", "B"),
        ("So \\boxed{E}", "E"),
        ("It cannot be (A); it must be (C) since ...", "C"),
        ("A dog would pick B", "B"),  # "A dog": an article, not a choice
        ("A dog barks.", None),
        ("The answer is (F).", None),  # not among the choices
    ],
)
def test_extract_choice(completion, expected):
    assert extract_choice(completion, "ABCDE") == expected
