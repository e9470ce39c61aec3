"""The data tasks (gsm8k, math, commonsenseqa, arc, jsonl) on the project's own fixtures, and
their answer checkers on every gold answer of the real GSM8K and MATH500 files when
``../shared/datasets`` is there."""

from __future__ import annotations

import logging
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest

from selftaught.config import DataTaskConfig, RunConfig
from selftaught.tasks import TASKS, build_task
from selftaught.tasks.answers import format_number
from selftaught.tasks.choice import ARCTask, CommonsenseQATask
from selftaught.tasks.gsm8k import GSM8KTask, rationale_of
from selftaught.tasks.jsonl import JsonlTask
from selftaught.tasks.math_task import MathTask
from selftaught.tasks.math_verifier import MathVerifier
from selftaught.tasks.sources import DataError, read_json, read_jsonl

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"
BAD = FIXTURES / "bad"
SHARED = Path(__file__).parents[2].parent / "shared" / "datasets"
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"real data sets not present at {SHARED} (optional)"
)


def cfg(name: str, path: Path | str, **kw) -> DataTaskConfig:
    return DataTaskConfig(name=name, path=str(path), **kw)


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(workers=2, timeout=20)
    yield v
    v.close()


# -- gsm8k -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gsm8k():
    return GSM8KTask(
        cfg(
            "gsm8k",
            FIXTURES / "gsm8k",
            few_shot_path=str(FIXTURES / "few_shot_gsm8k.jsonl"),
            few_shot=1,
        )
    )


def test_gsm8k_problems(gsm8k):
    train, held = gsm8k.train_problems(), gsm8k.eval_problems()
    assert (len(train), len(held)) == (6, 4)
    assert train[0].answer == "72" and train[0].question.startswith("Natalia sold clips")
    assert [p.id for p in held] == ["eval-0", "eval-1", "eval-2", "eval-3"]
    assert gsm8k.sizes == [1] and {p.bucket for p in train} == {"1"}


def test_gsm8k_prompt(gsm8k):
    problem = gsm8k.eval_problems()[0]
    prompt = gsm8k.prompt(problem)
    assert prompt.startswith(
        'Solve the math word problem step by step. End with a line "The answer is N."'
    )
    assert "\n\nQuestion: There are 15 trees" in prompt
    assert (
        "\nAnswer: There are 15 trees originally." in prompt and "\nThe answer is 6.\n\n" in prompt
    )
    assert prompt.endswith(f"Question: {problem.question}\nAnswer:")
    assert "If there are 3 cars" not in prompt  # few_shot: 1
    hinted = gsm8k.prompt(problem, hint=True)
    assert hinted.endswith(f"{problem.question}\n(Hint: the answer is 18)\nAnswer:")
    assert not gsm8k.leaks_hint(prompt.split("Question: ")[-1])


def test_gsm8k_exemplars_in_training_and_after_it():
    """As STaR's paper, a kept rationale is trained under the instruction and the bare
    question (``task.train_exemplars: true``: with the exemplars, the official code's
    --few_shot_train); a fine-tuned model is asked after the exemplars unless
    ``task.exemplars_after_training: false`` (--no_prompt). Problems, hints and stops stay."""

    def task(**keys):
        shots = {"few_shot_path": str(FIXTURES / "few_shot_gsm8k.jsonl"), "few_shot": 1}
        return GSM8KTask(cfg("gsm8k", FIXTURES / "gsm8k", **shots, **keys))

    default, problem = task(), task().train_problems()[0]
    instruction = default.prompt(problem).split("\n\n")[0]
    bare = f"{instruction}\n\nQuestion: {problem.question}\nAnswer:"
    assert default.train_prompt(problem) == bare
    assert task(train_exemplars=True).train_prompt(problem) == default.prompt(problem)
    assert default.for_trained_model() is default
    after = task(exemplars_after_training=False).for_trained_model()
    assert after.prompt(problem) == bare
    assert after.prompt(problem, hint=True) == bare.replace(
        "\nAnswer:", f"\n(Hint: the answer is {problem.answer})\nAnswer:"
    )
    assert after.train_problems() == default.train_problems() and after.stop == default.stop
    assert "There are 15 trees" in default.prompt(problem)  # the task itself keeps them


def test_gsm8k_answers(gsm8k):
    problem = gsm8k.eval_problems()[0]  # gold 18
    right = " 16 - 3 - 4 = 9 eggs.\n9 * 2 = $18.\nThe answer is 18."
    assert gsm8k.extract_answer(right) == "18" and gsm8k.is_correct("18", problem)
    assert gsm8k.is_correct(gsm8k.extract_answer("The answer is 18.00"), problem)
    assert not gsm8k.is_correct(gsm8k.extract_answer(right.replace("is 18", "is 19")), problem)
    assert not gsm8k.is_correct(None, problem)
    run_on = right + "\n\nQuestion: What is 2+3?\nAnswer: 2 + 3 = 5.\nThe answer is 5."
    assert gsm8k.extract_answer(run_on) == "18"  # the continuation is not its answer
    assert gsm8k.leaks_hint("As the hint says, the answer is 18.")
    assert not gsm8k.leaks_hint(right)
    steps = gsm8k.steps(right)
    assert len(steps) == 3 and "".join(steps) == right
    assert gsm8k.step_labels(problem, right) == [True, True, True]
    assert gsm8k.step_labels(problem, "The answer is 3.") == [False]


def test_gsm8k_completion_format(gsm8k):
    rationale, gold = rationale_of("Natalia sold 48/2 = <<48/2=24>>24 clips.\n#### 72")
    assert (rationale, gold) == ("Natalia sold 48/2 = 24 clips.", "72")
    assert gsm8k.completion(rationale, gold) == " Natalia sold 48/2 = 24 clips.\nThe answer is 72."


def test_data_tasks_need_no_seed_examples(gsm8k):
    with pytest.raises(NotImplementedError, match="only to train the built-in tiny model"):
        gsm8k.seed_examples(10, [1], 0.0)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing_field.jsonl", r"missing_field\.jsonl:2: missing field 'answer'"),
        ("no_hash.jsonl", r"no_hash\.jsonl:2: field 'answer' has no number \('Ten, of course"),
        ("answer_not_string.jsonl", r"answer_not_string\.jsonl:2: field 'answer' is an array"),
        ("truncated.jsonl", r"truncated\.jsonl:3: not valid JSON"),
    ],
)
def test_gsm8k_bad_rows(name, message):
    with pytest.raises(DataError, match=message):
        GSM8KTask(cfg("gsm8k", BAD / name, eval_path=str(FIXTURES / "gsm8k")))


# -- math ----------------------------------------------------------------------------------
def test_gsm8k_reference_is_the_worked_solution_in_the_asked_format(gsm8k):
    for problem in gsm8k.train_problems() + gsm8k.eval_problems():  # eval ids were renamed
        reference = gsm8k.reference(problem)
        assert reference.endswith(f"\nThe answer is {problem.answer}.")
        assert "####" not in reference and "<<" not in reference
        assert gsm8k.is_correct(gsm8k.extract_answer(reference), problem)


@pytest.fixture(scope="module")
def math500(verifier):
    return MathTask(cfg("math", FIXTURES / "math500.json", eval_size=3), verifier=verifier)


def test_math_problems(math500):
    problems = math500.train_problems() + math500.eval_problems()
    assert len(problems) == 8 and len(math500.eval_problems()) == 3
    first = next(p for p in problems if p.id == "train-0")
    assert first.question.startswith("Convert the point $(0,3)$") and "#" not in first.question
    assert first.answer == "\\left( 3, \\frac{\\pi}{2} \\right)" and first.bucket == "2"
    assert math500.sizes == sorted({int(p.bucket) for p in problems})
    assert math500.gold_unparseable == {}


def test_math_prompt_and_answers(math500):
    problem = next(p for p in math500.train_problems() if p.id == "train-2")  # \frac{14}{3}
    assert math500.prompt(problem).endswith(f"Question: {problem.question}\nAnswer:")
    assert "(Hint: the answer is $\\frac{14}{3}$)" in math500.prompt(problem, hint=True)
    completion = "We add.\n\nSo we get $\\dfrac{28}{6}$.\n\nThe answer is $\\boxed{\\frac{28}{6}}$."
    answer = math500.extract_answer(completion)
    assert answer == "\\frac{28}{6}" and math500.is_correct(answer, problem)
    assert not math500.is_correct("\\frac{13}{3}", problem)
    assert not math500.is_correct(None, problem)
    assert math500.steps(completion) == [
        "We add.\n\n",
        "So we get $\\dfrac{28}{6}$.\n\n",
        "The answer is $\\boxed{\\frac{28}{6}}$.",
    ]
    assert math500.step_labels(problem, completion) == [True] * 3
    assert math500.completion("We add.", "\\frac{14}{3}").endswith(
        "\nThe answer is $\\boxed{\\frac{14}{3}}$."
    )


@pytest.mark.parametrize("written", ["42.", "42", " 42. "])
def test_math_accepts_a_full_stop_inside_the_box(math500, written):
    problems = math500.train_problems() + math500.eval_problems()
    problem = next(p for p in problems if p.answer == "42")
    answer = math500.extract_answer(f"So it is 42.\n\nThe answer is $\\boxed{{{written}}}$.")
    assert answer == "42" and math500.is_correct(answer, problem)


def test_math_checks_from_a_thread(math500):
    problem = next(p for p in math500.train_problems() if p.id == "train-1")  # p - q
    found = []
    worker = threading.Thread(target=lambda: found.append(math500.is_correct("-q+p", problem)))
    worker.start()
    worker.join()
    assert found == [True]


def test_math_hub_format(verifier):
    task = MathTask(cfg("math", FIXTURES / "math_hub.jsonl", eval_size=1), verifier=verifier)
    by_id = {p.id: p for p in task.train_problems() + task.eval_problems()}
    assert by_id["train-1"].answer == "\\frac{3}{4}"  # from the solution's \boxed{}
    assert by_id["test/x/4.json"].answer == "4" and by_id["test/x/4.json"].bucket == "1"
    assert {p.bucket for p in by_id.values()} == {"1", "2", "?"}  # "Level ?" stays unknown
    assert task.sizes == [1, 2]
    # the solution is the reference candidate B-STaR scores; its \boxed{} answer is right
    assert task.reference(by_id["train-1"]) == "Divide by 2: $\\boxed{\\frac{3}{4}}$."
    for problem in by_id.values():
        assert task.is_correct(task.extract_answer(task.reference(problem)), problem)


def test_math_unparseable_gold_is_reported_not_scored_zero(verifier, caplog):
    config = cfg("math", FIXTURES / "math_unparseable.jsonl", eval_size=1, seed=3)
    with caplog.at_level(logging.WARNING):
        task = MathTask(config, verifier=verifier)
    assert list(task.gold_unparseable.values()) == ["???"]
    assert "cannot parse 1 of 3 gold answers" in caplog.text
    problem = next(p for p in task.train_problems() + task.eval_problems() if p.answer == "???")
    assert task.is_correct("???", problem) and task.unparseable_checks == 1
    assert not task.is_correct("!!!", problem)
    with pytest.raises(DataError, match="cannot parse 1 of 3 gold answers"):
        MathTask(config, verifier=verifier, unparseable_gold="error")


def test_math_without_gold_fails():
    with pytest.raises(DataError, match=r"math_no_gold\.jsonl:1: no gold answer"):
        MathTask(
            cfg("math", BAD / "math_no_gold.jsonl", eval_path=str(FIXTURES / "math_hub.jsonl"))
        )


# -- multiple choice ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def arc():
    return ARCTask(cfg("arc", FIXTURES / "arc.jsonl", eval_size=2, seed=0))


def test_arc_labels_are_letters(arc):
    problems = arc.train_problems() + arc.eval_problems()
    assert len(problems) == 7 and arc.letters == "ABCDE"
    for p in problems:
        assert p.answer in "ABCDE" and "\n(1)" not in p.question
        assert f"\n({p.answer}) " in p.question
    by_id = {p.id: p for p in problems}  # these two are labelled 1-4 in the file
    assert by_id["NYSEDREGENTS_2004_8_31"].answer == "B"
    assert by_id["NYSEDREGENTS_2005_8_26"].answer == "D"
    assert "\n(D) " in by_id["NYSEDREGENTS_2005_8_26"].question


def test_arc_prompt_hint_and_answers(arc):
    problem = arc.train_problems()[0]
    prompt = arc.prompt(problem)
    assert "Answer Choices:\n(A) dry palms\n(B) wet palms\n" in prompt and "CORRECT" not in prompt
    hinted = arc.prompt(problem, hint=True)
    assert "\n(A) dry palms (CORRECT)\n(B) wet palms\n" in hinted
    assert hinted.count("(CORRECT)") == 1
    assert arc.leaks_hint("Choice (A) is marked (CORRECT), so the answer is (A).")
    assert not arc.leaks_hint("Dry palms rub with more friction. The answer is (A).")
    assert arc.is_correct(
        arc.extract_answer("Friction heats dry palms most. The answer is (A)."), problem
    )
    assert not arc.is_correct(arc.extract_answer("The answer is (B)."), problem)
    assert (
        arc.extract_answer("The answer is (A).\n\nQuestion: next?\nAnswer: The answer is (C).")
        == "A"
    )


def test_commonsenseqa_with_exemplars():
    task = CommonsenseQATask(
        cfg(
            "commonsenseqa",
            FIXTURES / "commonsenseqa.jsonl",
            eval_size=2,
            few_shot_path=str(FIXTURES / "few_shot_csqa.jsonl"),
        )
    )
    problem = next(p for p in task.train_problems() + task.eval_problems() if p.id == "csqa-1")
    prompt = task.prompt(problem, hint=True)
    assert (
        "\n(C) television\n(D) cabinet\n(E) desk\nAnswer: The answer must require cable." in prompt
    )
    assert "only television requires cable.\nThe answer is (C).\n\n" in prompt
    assert prompt.endswith(
        "(A) swimming pool\n(B) basket (CORRECT)\n(C) dog show\n(D) backyard\n(E) own home\nAnswer:"
    )
    assert task.extract_answer(" Baskets hold things. Therefore, the answer is basket (b).") == "B"


@pytest.mark.parametrize(
    ("task", "name", "message"),
    [
        (
            CommonsenseQATask,
            "csqa_no_key.jsonl",
            r":1: the answer key is empty: .*eval_split: validation",
        ),
        (ARCTask, "arc_key_not_a_choice.jsonl", r":1: the answer 'D' is not one of the choices"),
    ],
)
def test_choice_bad_rows(task, name, message):
    with pytest.raises(DataError, match=message):
        task(cfg(task.name, BAD / name, eval_path=str(FIXTURES / "arc.jsonl")))


# -- jsonl -------------------------------------------------------------------------------------
JSONL_FIXTURES = {  # answer_type: the fixture and its field names
    "number": {"path": FIXTURES / "own.jsonl", "question_field": "q", "answer_field": "a"},
    "string": {
        "path": FIXTURES / "own_string.jsonl",
        "question_field": "prompt",
        "answer_field": "target",
    },
    "choice": {"path": FIXTURES / "own_choice.jsonl"},
    "math": {"path": FIXTURES / "own_math.jsonl"},
}


def jsonl_task(answer_type: str):
    return JsonlTask.from_config(
        cfg("jsonl", eval_size=1, answer_type=answer_type, **JSONL_FIXTURES[answer_type])
    )


def test_jsonl_number():
    task = jsonl_task("number")
    problems = {p.question: p for p in task.train_problems() + task.eval_problems()}
    half = problems["What is half of 1,000?"]
    assert half.answer == "500" and task.is_correct(
        task.extract_answer("The answer is 500.0"), half
    )
    assert problems["What is 7 * 6?"].answer == "42"  # a JSON number


def test_jsonl_string():
    task = jsonl_task("string")
    problem = next(p for p in task.train_problems() + task.eval_problems() if p.answer == "Mars")
    assert task.is_correct(task.extract_answer("It is red.\nThe answer is mars."), problem)
    assert not task.is_correct(task.extract_answer("The answer is Venus."), problem)


def test_jsonl_choice():
    task = jsonl_task("choice")
    problems = {p.question.split("\n")[0]: p for p in task.train_problems() + task.eval_problems()}
    animal = problems["Which is an animal?"]
    assert animal.answer == "A"  # "1" -> A
    assert "\n(A) cat (CORRECT)\n" in task.prompt(animal, hint=True)
    colour = problems["Which is a colour?"]
    assert "Answer Choices:\n(A) red\n(B) loud\n(C) heavy" in colour.question
    assert task.is_correct(task.extract_answer("The answer is (A)."), colour)


def test_jsonl_math():
    task = jsonl_task("math")
    problem = next(p for p in task.train_problems() + task.eval_problems() if p.answer == "2")
    assert task.is_correct(task.extract_answer("So $x = \\boxed{2}$."), problem)


# -- references ----------------------------------------------------------------------------------
def _data_tasks(verifier) -> dict:
    csqa = cfg("commonsenseqa", FIXTURES / "commonsenseqa.jsonl", eval_size=2)
    return {
        "arc": ARCTask(cfg("arc", FIXTURES / "arc.jsonl", eval_size=2)),
        "commonsenseqa": CommonsenseQATask(csqa),
        **{f"jsonl {kind}": jsonl_task(kind) for kind in JSONL_FIXTURES},
        "math500": MathTask(cfg("math", FIXTURES / "math500.json", eval_size=3), verifier=verifier),
    }


def test_every_data_task_has_a_reference_its_checker_accepts(verifier):
    """B-STaR's balance score counts one known-correct response per query: the row's worked
    solution, or the gold answer in the format the prompt asks for."""
    for name, task in _data_tasks(verifier).items():
        problems = task.train_problems() + task.eval_problems()
        references = [task.reference(p) for p in problems]
        assert all(references), name
        answers = [task.extract_answer(r) for r in references]
        assert all(task.is_correct_many(answers, problems)), name
        assert not any(task.leaks_hint(r) for r in references), name


# -- wiring --------------------------------------------------------------------------------------
def test_build_task_names_every_data_task():
    for name in ("gsm8k", "math", "commonsenseqa", "arc", "jsonl"):
        assert name in TASKS
    run = RunConfig.model_validate(
        {
            "task": {"name": "arc", "path": str(FIXTURES / "arc.jsonl"), "eval_size": 2},
            "model": {"name_or_path": "any/pretrained-model"},
        }
    )
    task = build_task(run.task)
    assert isinstance(task, ARCTask) and len(task.eval_problems()) == 2


# -- every gold of the real files against its own reference -------------------------------
@needs_shared
@pytest.mark.parametrize(("split", "rows"), [("train", 7473), ("test", 1319)])
def test_real_gsm8k_golds_accepted_and_perturbed_rejected(split, rows):
    other = "test" if split == "train" else "train"
    task = GSM8KTask(cfg("gsm8k", SHARED / "gsm8k", split=split, eval_split=other))
    solutions = [r.row["answer"] for r in read_jsonl(SHARED / "gsm8k" / f"{split}.jsonl")]
    problems = task.train_problems()
    assert len(problems) == len(solutions) == rows
    raw = accepted = formatted = rejected = 0
    for problem, solution in zip(problems, solutions, strict=True):
        raw += task.is_correct(task.extract_answer(solution), problem)  # the worked solution
        rationale, gold = rationale_of(solution)
        accepted += task.is_correct(task.extract_answer(task.completion(rationale, gold)), problem)
        wrong = format_number(Fraction(gold) + 1)
        formatted += gold == problem.answer
        rejected += not task.is_correct(
            task.extract_answer(task.completion(rationale, wrong)), problem
        )
    assert (raw, accepted, formatted, rejected) == (rows, rows, rows, rows)


@needs_shared
def test_real_math500_golds_accepted_and_perturbed_rejected(verifier):
    start = time.perf_counter()
    rows = [r.row for r in read_json(SHARED / "math500" / "test.json")]
    task = MathTask(cfg("math", SHARED / "math500" / "test.json", eval_size=100), verifier=verifier)
    problems = sorted(
        task.train_problems() + task.eval_problems(), key=lambda p: int(p.id.split("-")[1])
    )
    assert len(problems) == 500 and task.gold_unparseable == {}
    golds = [p.answer for p in problems]
    assert golds == [r["gt_answer"] for r in rows]
    # gold vs itself, through the model's format: the extractor and math-verify
    answers = [task.extract_answer(task.completion("We solve it.", g)) for g in golds]
    assert answers == golds
    assert sum(task.is_correct_many(answers, problems)) == 500
    # gold vs the file's own `answer`, where it has one
    given = [
        (r["answer"], p)
        for r, p in zip(rows, problems, strict=True)
        if r["answer"] != "Unavailable"
    ]
    assert len(given) == 238
    assert sum(task.is_correct_many([a for a, _ in given], [p for _, p in given])) == 238
    # perturbed: an integer + 1, anything else "+1"
    perturbed = [str(int(g) + 1) if g.lstrip("-").isdigit() else g + "+1" for g in golds]
    assert sum(task.is_correct_many(perturbed, problems)) == 0
    assert verifier.timeouts == 0 and verifier.errors == 0
    print(f"MATH500: 500 golds checked 3 ways in {time.perf_counter() - start:.1f} s")


@needs_shared
def test_real_arc_loads_with_letters():
    task = ARCTask(cfg("arc", SHARED / "arc_challenge"))
    train, held = task.train_problems(), task.eval_problems()
    assert (len(train), len(held)) == (1418, 1172)
    assert task.letters == "ABCDE"
    for p in train + held:
        assert f"\n({p.answer}) " in p.question and "\n(1) " not in p.question


def test_ids_stay_unique_across_train_and_eval(tmp_path):
    for split in ("train", "test"):  # both files number their rows 1, 2
        rows = [
            f'{{"id": {i}, "question": "What is {i}+{i}?", "answer": "#### {2 * i}"}}'
            for i in (1, 2)
        ]
        (tmp_path / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
    task = GSM8KTask(cfg("gsm8k", tmp_path))
    assert [p.id for p in task.train_problems()] == ["1", "2"]
    assert [p.id for p in task.eval_problems()] == ["eval-1", "eval-2"]
