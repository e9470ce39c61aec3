import random

import pytest

from selftaught.config import RunConfig
from selftaught.tasks import TASKS, AdditionTask, ExpressionTask, build_task
from selftaught.tasks.base import Task
from selftaught.tasks.expression import (
    count_rationales,
    evaluate,
    extract_answer,
    is_reduction,
    is_valid_solution,
    parse,
    rationale,
    reductions,
    solution,
    step_labels,
)


def full_text(question: str, hint: bool = False) -> str:
    task = ExpressionTask()
    return task.prompt(task._problem(question, "t", 0), hint=hint) + solution(question)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (
            "3 + 5 * 2 + 7",
            "Input:\n3 + 5 * 2 + 7\nTarget:\n<scratch>\n3 + 0 + 7\n3 + 7\n0\n</scratch>\n0",
        ),
        ("4 * 3", "Input:\n4 * 3\nTarget:\n<scratch>\n2\n</scratch>\n2"),
        ("9 + 8", "Input:\n9 + 8\nTarget:\n<scratch>\n7\n</scratch>\n7"),
        (  # the leftmost pair is a + next to a *, so the canonical order skips it
            "9 * 9 + 9 * 9",
            "Input:\n9 * 9 + 9 * 9\nTarget:\n<scratch>\n1 + 9 * 9\n1 + 1\n2\n</scratch>\n2",
        ),
        (
            "2 * 3 * 4 + 1",
            "Input:\n2 * 3 * 4 + 1\nTarget:\n<scratch>\n6 * 4 + 1\n4 + 1\n5\n</scratch>\n5",
        ),
    ],
)
def test_canonical_solution_is_byte_exact(question, expected):
    assert full_text(question) == expected


def test_hint_line_stands_before_target_and_is_detected():
    assert full_text("3 + 5 * 2 + 7", hint=True).startswith(
        "Input:\n3 + 5 * 2 + 7\nHint: 0\nTarget:\n<scratch>\n"
    )
    task = ExpressionTask()
    assert task.leaks_hint("<scratch>\nHint: 0\n")
    assert not task.leaks_hint(solution("3 + 5 * 2 + 7"))


@pytest.mark.parametrize(
    ("line", "value"),
    [("3 + 5 * 2 + 7", 0), ("9 * 9 + 9 * 9", 2), ("7", 7), ("0 * 5 + 6", 6), ("5 + 5", 0)],
)
def test_evaluate_is_mod_10_with_precedence(line, value):
    assert evaluate(line) == value


@pytest.mark.parametrize(
    "line", ["", "3 +", "+ 3", "3  + 5", "12 + 3", "3 - 5", "3 + + 5", "²", "3 +* 5", " 3"]
)
def test_malformed_lines_do_not_parse(line):
    assert parse(line) is None
    assert evaluate(line) is None
    assert reductions(line) == []


def test_only_precedence_respecting_pairs_reduce():
    assert reductions("3 + 5 * 2") == ["3 + 0"]  # not "8 * 2"
    assert reductions("3 * 5 + 2") == ["5 + 2"]  # not "3 * 7"
    assert reductions("1 + 2 + 3") == ["3 + 3", "1 + 5"]
    assert reductions("2 * 3 * 4") == ["6 * 4", "2 * 2"]
    assert reductions("7") == []
    # right by coincidence (3 + 5 * 1 = 8 = 8 * 1), still a precedence error
    assert not is_reduction("3 + 5 * 1", "8 * 1")


ONE_TO_FOUR = {  # every rationale of 1 + 2 + 3 + 4, written out by hand
    ("3 + 3 + 4", "6 + 4", "0"),
    ("3 + 3 + 4", "3 + 7", "0"),
    ("1 + 5 + 4", "6 + 4", "0"),
    ("1 + 5 + 4", "1 + 9", "0"),
    ("1 + 2 + 7", "3 + 7", "0"),
    ("1 + 2 + 7", "1 + 9", "0"),
}


def as_completion(lines, answer) -> str:
    return "<scratch>\n" + "".join(f"{line}\n" for line in lines) + f"</scratch>\n{answer}"


def test_a_four_term_problem_has_several_rationales_and_all_are_accepted():
    rng = random.Random(0)
    drawn = {tuple(rationale("1 + 2 + 3 + 4", rng)) for _ in range(200)}
    assert drawn == ONE_TO_FOUR
    assert count_rationales("1 + 2 + 3 + 4") == 6
    problem = ExpressionTask()._problem("1 + 2 + 3 + 4", "t", 0)
    for lines in ONE_TO_FOUR:
        completion = as_completion(lines, "0")
        assert is_valid_solution("1 + 2 + 3 + 4", completion)
        assert ExpressionTask().step_labels(problem, completion) == [True] * 5


@pytest.mark.parametrize(
    ("question", "count"),
    [("2 * 3 + 4 * 5", 2), ("1 * 2 * 3 * 4", 6), ("2 + 0 + 2", 1), ("7", 1), ("4 + 4", 1)],
)
def test_count_rationales_counts_distinct_texts(question, count):
    rng = random.Random(1)
    assert count_rationales(question) == count
    assert len({tuple(rationale(question, rng)) for _ in range(300)}) == count


def test_random_rationales_are_valid_and_end_at_the_answer():
    rng = random.Random(2)
    task = ExpressionTask(2, 9, train_size=300, eval_size=5)
    for problem in task.train_problems():
        completion = solution(problem.question, rng)
        assert is_valid_solution(problem.question, completion)
        assert task.is_correct(task.extract_answer(completion), problem)
        assert len(rationale(problem.question)) == int(problem.bucket) - 1


Q = "3 + 5 * 2 + 7"


@pytest.mark.parametrize(
    ("lines", "answer", "labels"),
    [
        (["3 + 0 + 7", "3 + 7", "0"], "0", [True] * 5),
        (["3 + 0 + 7", "0 + 7", "7"], "7", [True, True, False, False, False]),  # wrong value
        (["3 + 1 + 7", "3 + 8", "1"], "1", [True, False, False, False, False]),  # wrong value
        (["3 + 0 + 7", "0"], "0", [True, True, False, False]),  # two merges at once
        (["8 * 2 + 7", "6 + 7", "3"], "3", [True, False, False, False, False]),  # 3 + 5 first
        (["3 + 0 + 7", "3 + 7", "0"], "1", [True, True, True, True, False]),  # wrong answer
        (["3 + 0 + 7", "3 + 7"], "0", [True, True, True, False]),  # stopped before one digit
        (["3 + 0 + 7", "3 + 7", "0", "0"], "0", [True, True, True, True, False, False]),
        ([Q, "3 + 0 + 7", "3 + 7", "0"], "0", [True, False, False, False, False, False]),
        ([], "0", [True, False]),  # no reasoning at all
    ],
)
def test_step_labels_are_false_from_the_first_invalid_step(lines, answer, labels):
    task = ExpressionTask()
    completion = as_completion(lines, answer)
    assert task.step_labels(task._problem(Q, "t", 0), completion) == labels
    assert is_valid_solution(Q, completion) == all(labels)


def test_a_lucky_precedence_error_is_caught_although_the_answer_is_right():
    completion = as_completion(["8 * 1", "8"], "8")  # 3 + 5 * 1 is 8, but not this way
    assert extract_answer(completion) == str(evaluate("3 + 5 * 1"))
    assert step_labels("3 + 5 * 1", completion) == [True, False, False, False]


def test_labels_of_garbled_scratchpads():
    assert step_labels(Q, "x" + solution(Q)) == [False] * 5  # text before <scratch>
    assert step_labels(Q, solution(Q).replace("</scratch>\n", "</scratch>")) == [True] * 4 + [False]
    assert step_labels(Q, "<scratch>\n3 + 0 + 7\n3 + 7") == [True, True, True]  # cut short
    assert not is_valid_solution(Q, "<scratch>\n3 + 0 + 7\n3 + 7")
    assert step_labels(Q, "0") == [False]


def test_a_wrong_value_anywhere_is_labelled_false_from_there_on():
    """Valid reductions keep the value, so a line whose value changed can never be one."""
    rng = random.Random(3)
    for problem in ExpressionTask(2, 7, train_size=300, eval_size=5).train_problems():
        lines = rationale(problem.question, rng)
        k = rng.randrange(len(lines))
        terms = lines[k].split(" ")
        j = 2 * rng.randrange(len(terms) // 2 + 1)  # a term, not an operator
        terms[j] = str((int(terms[j]) + rng.randint(1, 9)) % 10)
        if evaluate(" ".join(terms)) == evaluate(lines[k]):
            continue  # e.g. a change to a term multiplied by 0
        lines[k] = " ".join(terms)
        labels = step_labels(problem.question, as_completion(lines, problem.answer))
        assert labels == [True] * (k + 1) + [False] * (len(lines) + 1 - k)


def test_steps_of_a_solution():
    assert ExpressionTask().steps(solution(Q)) == [
        "<scratch>\n",
        "3 + 0 + 7\n",
        "3 + 7\n",
        "0\n",
        "</scratch>\n0",
    ]


@pytest.mark.parametrize(
    ("completion", "steps"),
    [
        ("", [""]),
        ("7", ["7"]),
        ("no scratchpad\n7\n", ["no scratchpad\n7\n"]),
        ("<scratch>\n", ["<scratch>\n"]),
        ("<scratch>\n3 + 7", ["<scratch>\n", "3 + 7"]),  # unterminated
        ("<scratch>\n</scratch>\n0", ["<scratch>\n", "</scratch>\n0"]),
        ("ab<scratch>\n0\n", ["ab<scratch>\n", "0\n"]),
        (
            "<scratch>\n0\n</scratch>\n0\nInput:\n1",
            ["<scratch>\n", "0\n", "</scratch>\n0\nInput:\n1"],
        ),
        ("<scratch>\na\u2028b\rc\n</scratch>", ["<scratch>\n", "a\u2028b\rc\n", "</scratch>"]),
        ("<scratch>\n\n\n", ["<scratch>\n", "\n", "\n"]),
    ],
)
def test_steps_split_only_at_scratchpad_lines(completion, steps):
    assert ExpressionTask().steps(completion) == steps


PIECES = ["<scratch>\n", "</scratch>\n", "</scratch>", "\n", "\r", " ", "+", "*", "3", "0", "x"]


def random_garbage(rng: random.Random) -> str:
    if rng.random() < 0.3:  # raw code points, including surrogates and controls
        return "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(30)))
    return "".join(rng.choice(PIECES) for _ in range(rng.randrange(20)))


def test_steps_rejoin_exactly_and_labels_never_raise_on_garbage():
    rng = random.Random(4)
    task = ExpressionTask()
    problem = task._problem(Q, "t", 0)
    for _ in range(3000):
        text = random_garbage(rng)
        steps = task.steps(text)
        assert steps and "".join(steps) == text
        labels = task.step_labels(problem, text)
        assert len(labels) == len(steps)
        assert labels == sorted(labels, reverse=True)  # never False then True
        assert task.extract_answer(text) in (None, *"0123456789")


@pytest.mark.parametrize(
    "completion",
    [
        "",
        "<scratch>\n0\n",  # cut before the end
        "<scratch>\n0\n</scratch>\n",  # nothing after the scratchpad
        "</scratch>\n12",
        "</scratch>\n 0",
        "</scratch>\n0 ",
        "</scratch>\n²",
        "</scratch>\n٣",
        "</scratch>\nx",
        "</scratch>0",
        "garbage \x00\xff",
    ],
)
def test_malformed_answers_are_unparseable_not_errors(completion):
    assert ExpressionTask().extract_answer(completion) is None


def test_answer_is_the_line_after_the_scratchpad():
    task = ExpressionTask()
    assert task.extract_answer("<scratch>\n7\n</scratch>\n7") == "7"
    assert task.extract_answer("</scratch>\n7\nInput:\n1 + 1") == "7"
    problem = task._problem(Q, "t", 0)
    assert task.is_correct("0", problem)
    assert not task.is_correct("1", problem)
    assert not task.is_correct(None, problem)


def test_eval_set_is_held_out_from_training_and_seeded():
    task = ExpressionTask(2, 4, train_size=3000, eval_size=40, seed=3)
    held_out = {p.question for p in task.eval_problems()}
    assert not held_out & {p.question for p in task.train_problems()}
    seeds = task.seed_examples(3000, [2, 3], 0.5)
    assert not held_out & {e.prompt.split("\n")[1] for e in seeds}
    again = ExpressionTask(2, 4, train_size=3000, eval_size=40, seed=3)
    assert again.eval_problems() == task.eval_problems()
    assert again.train_problems() == task.train_problems()
    assert again.seed_examples(3000, [2, 3], 0.5) == seeds
    other = ExpressionTask(2, 4, train_size=3000, eval_size=40, seed=4)
    assert other.train_problems() != task.train_problems()
    assert other.eval_problems() != task.eval_problems()


def test_buckets_are_term_counts_and_small_spaces_are_held_out_by_a_third():
    task = ExpressionTask(2, 5, train_size=400, eval_size=30)
    assert task.sizes == [2, 3, 4, 5]
    for p in task.train_problems() + task.eval_problems():
        assert len(parse(p.question)[0]) == int(p.bucket)
        assert p.answer == str(evaluate(p.question))
    train_sizes = [p.bucket for p in task.train_problems()]
    assert {b: train_sizes.count(b) for b in set(train_sizes)} == {
        "2": 100,
        "3": 100,
        "4": 100,
        "5": 100,
    }
    # 2 terms: 10 * 10 * 2 = 200 expressions, at most a third held out
    assert len(ExpressionTask(2, 2, 10, 100).eval_problems()) == 66


def test_seed_examples_use_several_merge_orders_and_some_hints():
    task = ExpressionTask()
    examples = task.seed_examples(600, [4, 5, 6], hinted_fraction=0.5)
    hinted = sum("Hint:" in e.prompt for e in examples)
    assert 200 < hinted < 400
    questions = [e.prompt.split("\n")[1] for e in examples]
    assert all(is_valid_solution(q, e.completion) for q, e in zip(questions, examples, strict=True))
    assert all("Hint" not in e.completion for e in examples)
    canonical = sum(e.completion == solution(q) for q, e in zip(questions, examples, strict=True))
    assert canonical < 300  # most 4-6 term problems have several orders; a random one is drawn


def test_rejects_term_ranges_without_reasoning():
    for low, high in [(1, 3), (4, 3), (0, 0)]:
        with pytest.raises(ValueError, match="min_terms"):
            ExpressionTask(low, high)


@pytest.mark.parametrize("task", [ExpressionTask(), AdditionTask()], ids=["expression", "addition"])
def test_tasks_implement_the_whole_protocol(task):
    members = {n for n in vars(Task) if not n.startswith("_")} | set(Task.__annotations__)
    assert {"steps", "step_labels", "seed_examples", "sizes"} <= members
    for name in members:
        assert hasattr(task, name), name


@pytest.mark.parametrize("task", [ExpressionTask(), AdditionTask()], ids=["expression", "addition"])
def test_the_reference_solution_is_correct_in_every_step(task):
    for problem in task.train_problems()[:50]:
        reference = task.reference(problem)
        assert task.is_correct(task.extract_answer(reference), problem)
        assert all(task.step_labels(problem, reference))
        assert not task.leaks_hint(reference)


def test_build_task_makes_an_expression_task_from_a_run_config():
    assert "expression" in TASKS
    config = RunConfig(
        task={
            "name": "expression",
            "min_terms": 3,
            "max_terms": 4,
            "train_size": 10,
            "eval_size": 5,
            "seed": 2,
        },
        seed=7,  # the run's seed varies sampling and training, not the data
    )
    task = build_task(config.task)
    assert isinstance(task, ExpressionTask)
    assert task.sizes == [3, 4] and task.seed == 2
    assert len(task.train_problems()) == 10 and len(task.eval_problems()) == 10
