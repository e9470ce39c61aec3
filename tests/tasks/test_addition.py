import random

import pytest

from selftaught.tasks.addition import AdditionTask, scratchpad


def full_text(task: AdditionTask, a: int, b: int) -> str:
    problem = task._problem(a, b, "t", 0)
    return task.prompt(problem) + task.solution(a, b)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (  # the paper's example, verbatim
            624,
            259,
            "Input:\n6 2 4 + 2 5 9\nTarget:\n<scratch>\n6 2 4 + 2 5 9 , C: 0\n2 + 5 , 3 C: 1\n"
            "6 + 2 , 8 3 C: 0\n, 8 8 3 C: 0\n0 8 8 3\n</scratch>\n8 8 3",
        ),
        (4, 3, "Input:\n4 + 3\nTarget:\n<scratch>\n4 + 3 , C: 0\n, 7 C: 0\n0 7\n</scratch>\n7"),
        (  # a carry into a new leading digit
            9,
            3,
            "Input:\n9 + 3\nTarget:\n<scratch>\n9 + 3 , C: 0\n, 2 C: 1\n1 2\n</scratch>\n1 2",
        ),
        (
            57,
            68,
            "Input:\n5 7 + 6 8\nTarget:\n<scratch>\n5 7 + 6 8 , C: 0\n5 + 6 , 5 C: 1\n"
            ", 2 5 C: 1\n1 2 5\n</scratch>\n1 2 5",
        ),
        (
            9999,
            1111,
            "Input:\n9 9 9 9 + 1 1 1 1\nTarget:\n<scratch>\n9 9 9 9 + 1 1 1 1 , C: 0\n"
            "9 + 1 , 0 C: 1\n9 + 1 , 1 0 C: 1\n9 + 1 , 1 1 0 C: 1\n, 1 1 1 0 C: 1\n"
            "1 1 1 1 0\n</scratch>\n1 1 1 1 0",
        ),
    ],
)
def test_scratchpad_is_byte_exact(a, b, expected):
    assert full_text(AdditionTask(), a, b) == expected


def test_scratchpad_final_line_holds_carry_and_all_digits():
    for a, b in [(1, 2), (55, 55), (12345, 98765), (500, 500)]:
        lines = scratchpad(a, b).split("\n")
        carry_and_digits = lines[-3].replace(" ", "")
        assert int(carry_and_digits) == a + b


@pytest.mark.parametrize(
    "completion",
    [
        "",
        "<scratch>\n1 + 1 , C: 0\n",  # cut before the end
        "<scratch>\n</scratch>\n",  # nothing after the scratchpad
        "<scratch>\n</scratch>\n1 2x",  # not digits
        "<scratch>\n</scratch>\n12",  # digits not spaced
        "<scratch>\n</scratch>\n 1  2",  # doubled spaces
        "garbage \x00\xff",
        "</scratch>",  # no newline after the marker
        "<scratch>\n</scratch>\n²",  # a digit to str.isdigit, not to us
        "<scratch>\n</scratch>\n8 ٣",
    ],
)
def test_malformed_answers_are_unparseable_not_errors(completion):
    assert AdditionTask().extract_answer(completion) is None


def test_answer_is_the_line_after_the_scratchpad():
    task = AdditionTask()
    assert task.extract_answer("<scratch>\nx\n</scratch>\n8 8 3") == "8 8 3"
    assert task.extract_answer("<scratch>\nx\n</scratch>\n8 8 3\nInput:\n1 + 1") == "8 8 3"
    problem = task._problem(624, 259, "t", 0)
    assert task.is_correct("8 8 3", problem)
    assert not task.is_correct("8 8 4", problem)
    assert not task.is_correct(None, problem)


def test_hint_shows_the_answer_and_is_detected():
    task = AdditionTask()
    problem = task._problem(624, 259, "t", 0)
    assert task.prompt(problem, hint=True) == "Input:\n6 2 4 + 2 5 9\nHint: 8 8 3\nTarget:\n"
    assert task.leaks_hint("Hint: 8 8 3\n<scratch>")
    assert not task.leaks_hint(task.solution(624, 259))


def test_eval_set_is_held_out_from_training_and_seeded():
    task = AdditionTask(1, 4, train_size=4000, eval_size=50, seed=3)
    held_out = {p.question for p in task.eval_problems()}
    assert not held_out & {p.question for p in task.train_problems()}
    assert not held_out & {e.prompt.split("\n")[1] for e in task.seed_examples(2000, [1, 2], 0.5)}
    again = AdditionTask(1, 4, train_size=4000, eval_size=50, seed=3)
    assert again.train_problems() == task.train_problems()
    assert AdditionTask(1, 4, 4000, 50, seed=4).train_problems() != task.train_problems()


def test_buckets_are_digit_counts_with_exactly_n_digit_operands():
    task = AdditionTask(1, 5, train_size=500, eval_size=20)
    for p in task.train_problems() + task.eval_problems():
        a, b = p.question.split(" + ")
        assert len(a.split()) == len(b.split()) == int(p.bucket)
        assert a[0] != "0" and b[0] != "0"
    sizes = {}
    for p in task.eval_problems():
        sizes[p.bucket] = sizes.get(p.bucket, 0) + 1
    assert sizes == {"1": 20, "2": 20, "3": 20, "4": 20, "5": 20}
    # 1-digit sums are 81 pairs: at most a third is held out
    assert AdditionTask(1, 1, 10, 100).eval_problems().__len__() == 27


def test_seed_examples_mix_hinted_and_plain_prompts():
    examples = AdditionTask().seed_examples(400, [1, 2, 3], hinted_fraction=0.5)
    hinted = sum("Hint:" in e.prompt for e in examples)
    assert 120 < hinted < 280
    assert all("Hint" not in e.completion for e in examples)


def test_sizes_are_the_digit_counts():
    task = AdditionTask(2, 4)
    assert task.sizes == task.digit_counts == [2, 3, 4]


GOLD_STEPS = [  # the paper's example, one step per line
    "<scratch>\n",
    "6 2 4 + 2 5 9 , C: 0\n",
    "2 + 5 , 3 C: 1\n",
    "6 + 2 , 8 3 C: 0\n",
    ", 8 8 3 C: 0\n",
    "0 8 8 3\n",
    "</scratch>\n8 8 3",
]


def test_steps_are_scratchpad_lines_then_the_answer():
    assert AdditionTask().steps(AdditionTask.solution(624, 259)) == GOLD_STEPS


def labels(steps: list[str]) -> list[bool]:
    task = AdditionTask()
    return task.step_labels(task._problem(624, 259, "t", 0), "".join(steps))


def test_gold_steps_are_all_valid():
    assert labels(GOLD_STEPS) == [True] * 7
    rng = random.Random(0)
    task = AdditionTask(1, 6, train_size=200, eval_size=5)
    for p in task.train_problems():
        a, b = (int(x.replace(" ", "")) for x in p.question.split(" + "))
        assert all(task.step_labels(p, task.solution(a, b)))
        assert not all(task.step_labels(p, task.solution(a, b + rng.randint(1, 9))))


@pytest.mark.parametrize("k", range(1, 6))
def test_a_wrong_line_is_labelled_false_from_there_on(k):
    steps = list(GOLD_STEPS)
    steps[k] = steps[k].replace("C: 0", "C: 1") if "C: 0" in steps[k] else "1 2 3\n"
    assert labels(steps) == [True] * k + [False] * (7 - k)


def test_labels_of_other_broken_scratchpads():
    wrong_answer = [*GOLD_STEPS[:-1], "</scratch>\n8 8 4"]
    assert labels(wrong_answer) == [True] * 6 + [False]
    skipped = GOLD_STEPS[:3] + GOLD_STEPS[4:]  # a column left out, right answer anyway
    assert labels(skipped) == [True] * 3 + [False] * 3
    stopped_early = [*GOLD_STEPS[:3], "</scratch>\n8 8 3"]
    assert labels(stopped_early) == [True] * 3 + [False]
    extra = [*GOLD_STEPS[:-1], "0 8 8 3\n", GOLD_STEPS[-1]]
    assert labels(extra) == [True] * 6 + [False] * 2
    assert labels(["x", *GOLD_STEPS]) == [False] * 7  # text before <scratch>
    assert labels(GOLD_STEPS[:4]) == [True] * 4  # cut short: no wrong step yet
    assert labels(["8 8 3"]) == [False]  # no scratchpad at all
    assert labels([]) == [False]


def test_steps_rejoin_exactly_on_corrupted_solutions_and_garbage():
    rng = random.Random(1)
    task = AdditionTask()
    problem = task._problem(624, 259, "t", 0)
    gold = AdditionTask.solution(624, 259)
    for _ in range(2000):
        if rng.random() < 0.5:
            i, j = sorted(rng.randrange(len(gold) + 1) for _ in range(2))
            text = gold[:i] + "".join(chr(rng.randrange(0x110000)) for _ in range(3)) + gold[j:]
        else:
            text = "".join(
                rng.choice(["<scratch>\n", "</scratch>\n", "\n", "7 ", ","]) for _ in range(9)
            )
        steps = task.steps(text)
        assert steps and "".join(steps) == text
        got = task.step_labels(problem, text)
        assert len(got) == len(steps) and got == sorted(got, reverse=True)


@pytest.mark.parametrize("fmt", ["scratchpad", "columns", "place-value", "direct"])
def test_a_few_shot_prompt_shows_worked_exemplars_and_trains_without_them(fmt):
    task = AdditionTask(1, 3, 10, 5, few_shot=3, format=fmt)
    problem = task.eval_problems()[-1]
    prompt, hinted = task.prompt(problem), task.prompt(problem, hint=True)
    assert prompt.endswith(task.train_prompt(problem)) and prompt != task.train_prompt(problem)
    assert prompt.count(task.format.separator) == 3 and hinted.count("Hint") == 4
    assert task.stop and not any(s in task.reference(problem) for s in task.stop)
    assert task.extract_answer(task.reference(problem)) == problem.answer
    assert (
        AdditionTask(1, 3, 10, 5, few_shot=3, format=fmt, train_exemplars=True).train_prompt(
            problem
        )
        == prompt
    )


def test_the_builtin_prompt_is_unchanged_without_exemplars():
    task, problem = AdditionTask(), AdditionTask().eval_problems()[0]
    assert task.stop == () and task.step_gold
    assert (
        task.prompt(problem)
        == task.train_prompt(problem)
        == f"Input:\n{problem.question}\nTarget:\n"
    )


def test_worded_rationales_add_up():
    from selftaught.tasks.addition_formats import FORMATS

    assert FORMATS["columns"].solution(57, 68) == (
        " Ones: 7 + 8 = 15, write 5 carry 1. Tens: 5 + 6 + 1 = 12, write 2 carry 1. "
        "Write the carry 1. The answer is 125."
    )
    assert FORMATS["place-value"].solution(57, 68) == (
        " 50 + 60 = 110. 7 + 8 = 15. 110 + 15 = 125. The answer is 125."
    )
    task = AdditionTask(1, 2, 10, 5, few_shot=1, format="columns")
    assert task.step_labels(task.eval_problems()[0], "no answer") == [False]


@pytest.mark.parametrize("fmt", ["columns", "place-value"])
def test_worded_steps_are_judged_sentence_by_sentence(fmt):
    """Kept rationales that reach the right sum by wrong steps (what the pretrained model
    writes when it is given the answer as a hint) are told apart from worked ones."""
    task = AdditionTask(2, 2, 10, 5, few_shot=1, format=fmt)
    problem = task.eval_problems()[0]
    worked = task.reference(problem)
    steps = task.steps(worked)
    assert "".join(steps) == worked and len(steps) >= 3
    assert task.step_labels(problem, worked) == [True] * len(steps)
    # a wrong middle sentence spoils it and everything after, even with the right answer
    wrong = steps[0] + steps[1].replace("=", "= 1") + "".join(steps[2:])
    assert task.step_labels(problem, wrong)[0] and not any(task.step_labels(problem, wrong)[1:])
    assert task.extract_answer(wrong) == problem.answer
    # the answer said twice: the repeat is past the worked solution's end
    assert task.step_labels(problem, worked + " " + steps[-1]) == [True] * len(steps) + [False]
    # a skipped step: right answer, not valid
    assert not all(task.step_labels(problem, steps[0] + steps[-1]))


def test_a_fine_tuned_model_is_asked_the_bare_question_with_exemplars_after_training_off():
    """The official STaR code's --no_prompt: once trained on bare questions, the model is
    prompted with them; by default (its default too) the exemplars stay."""
    shown = AdditionTask(1, 2, 10, 5, few_shot=3, format="columns")
    bare = AdditionTask(1, 2, 10, 5, few_shot=3, format="columns", exemplars_after_training=False)
    problem = shown.eval_problems()[0]
    assert shown.for_trained_model() is shown
    trained = bare.for_trained_model()
    assert trained.prompt(problem) == bare.train_prompt(problem) != bare.prompt(problem)
    assert "Hint" in trained.prompt(problem, hint=True)
    assert trained.prompt(problem, hint=True).count("Question:") == 1
    assert trained.stop == bare.stop and trained.eval_problems() == bare.eval_problems()
    assert bare.prompt(problem) == shown.prompt(problem)  # the base model keeps them
