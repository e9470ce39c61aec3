"""What the data tasks share: steps of a completion."""

from __future__ import annotations

import pytest

from selftaught.tasks.data import split_lines, split_paragraphs


# -- steps ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text", ["", "one line", "a\nb\n", "a\n\nb", "\nlead", "p1\n\np2\n\n\np3\n", "\n\n", "x\n"]
)
def test_steps_join_back(text):
    for split in (split_lines, split_paragraphs):
        steps = split(text)
        assert steps and "".join(steps) == text


def test_step_shapes():
    assert split_lines("a\nb\n\nc") == ["a\n", "b\n\n", "c"]
    assert split_paragraphs("a\nb\n\nc\n\n\nd") == ["a\nb\n\n", "c\n\n\n", "d"]
