"""With the defaults, B-STaR chooses the temperature and threshold the official code chooses
on the same scored samples, and trains on the same responses.

``Official`` below is the official code's selection logic (hkust-nlp/B-STaR,
``train_code/determine_hyper.py`` and ``metric_modiacc_auto.py``), re-implemented from reading
it: the same steps in the same order, the same float loop for tau, ``np.mean`` and
``list.index(max(...))``; only the file reading is replaced by lists. selftaught's side goes
through the run's own code: the config's defaults, ``training_data.bstar_candidates`` and
``training_set``.
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass

import numpy as np
import pytest

from selftaught import bstar
from selftaught.config import resolve
from selftaught.tasks import Problem
from selftaught.training_data import bstar_candidates, search_grid, training_set

MARKER = "\n\n# Answer\n\n"


# -- the official code ---------------------------------------------------------------------
def get_unique_trn_json(max_samples, trn_data, score_threshold):
    trn_json = []
    for item in trn_data:
        solutions = []
        for sample in item["sample_list"]:
            if MARKER in sample["output"]:
                prm_score = min(sample["reward"])
                orm_score = 0.0
                if sample["output"].split(MARKER)[-1] == sample["response"].split(MARKER)[-1]:
                    orm_score = 1.0
                final_score = prm_score / 5.0 + orm_score
                solutions.append(
                    {"prm_score": prm_score, "output": sample["output"], "score": final_score}
                )
        solutions.append({"prm_score": 0.0, "output": sample["response"], "score": 1.0})
        solutions_sorted = sorted(solutions, key=lambda x: x["score"], reverse=True)
        idx = 0
        for solu in solutions_sorted:
            if solu["score"] > score_threshold:
                query, output = item["prompt"], solu["output"]
                trn_json.append({"query": query, "output": output, "response": sample["response"]})
                idx += 1
                if idx >= max_samples:
                    break
    unique_trn_json, seen = [], set()
    for item in trn_json:
        identifier = (item["query"], item["output"])
        if identifier not in seen:
            seen.add(identifier)
            unique_trn_json.append(item)
    return unique_trn_json


def cal_modi_acc_soft(data_json):
    unique_dict = {item["query"]: [] for item in data_json}
    for item in data_json:
        unique_dict[item["query"]].append(item)
    correct_num, correct_ratio = [], []
    for outputs in unique_dict.values():
        temp_count = sum(
            o["output"].split(MARKER)[-1] == o["response"].split(MARKER)[-1] for o in outputs
        )
        correct_num.append(temp_count)
        correct_ratio.append(temp_count / len(outputs))
    modi_acc_list = [
        ratio if num >= 8 else (num * ratio) / 8
        for num, ratio in zip(correct_num, correct_ratio, strict=True)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # np.mean([]): NaN, with a warning
        return np.mean(modi_acc_list)


def find_rewardbase(ana_list, reward_base, target_size):
    # the official loop tries caps 1, 2, ..., 64 and stops at the first whose data reaches
    # the target; the count never falls as the cap grows, so when 64 falls short the loop
    # ends on 64's data: starting there changes the time only
    unique_trn_json = get_unique_trn_json(64, ana_list, reward_base)
    if len(unique_trn_json) < target_size:
        return cal_modi_acc_soft(unique_trn_json), unique_trn_json
    max_samples, iteration = 1, 0
    while iteration < 64:
        unique_trn_json = get_unique_trn_json(max_samples, ana_list, reward_base)
        if len(unique_trn_json) >= target_size:
            break
        max_samples += 1
        iteration += 1
    return cal_modi_acc_soft(unique_trn_json), unique_trn_json


def sweep(ana_list, target_size):
    """find_strategy's loop, and metric_modiacc_auto's: the best score, the tau that first
    reaches it, the data kept there, and every tau's score."""
    hyper_param, best, best_hyper, best_data, scores = -1.0, float("-inf"), None, None, []
    while True:
        modi_acc, data = find_rewardbase(ana_list, hyper_param, target_size)
        scores.append((hyper_param, modi_acc))
        if modi_acc > best:
            best, best_hyper, best_data = modi_acc, hyper_param, data
        hyper_param += 0.01
        if hyper_param > 1.0:
            break
    return best, best_hyper, best_data, scores


def determine_temperature(ana_lists, target_size):
    """determine_hyper.main over temperatures given in ascending order."""
    effect_values = [sweep(ana_lists[t], target_size)[0] for t in sorted(ana_lists)]
    return sorted(ana_lists)[effect_values.index(max(effect_values))], effect_values


# -- one scored round, in both formats -----------------------------------------------------
@dataclass
class Response:
    text: str  # the reasoning
    answer: str | None  # None: no answer marker
    steps: list[float]


def official_items(round_: dict[str, list[Response]], gold: dict[str, str], rng) -> list[dict]:
    """process_data's output: per query, its samples with the reference as ``response``."""
    rows = [(q, r) for q, responses in round_.items() for r in responses]
    rng.shuffle(rows)  # process_data shuffles the file's lines
    items: dict[str, dict] = {}
    for q, r in rows:
        output = r.text if r.answer is None else f"{r.text}{MARKER}{r.answer}"
        sample = {"output": output, "reward": r.steps, "response": reference(q, gold[q])}
        items.setdefault(q, {"prompt": q, "sample_list": []})["sample_list"].append(sample)
    return list(items.values())


def reference(q: str, gold: str) -> str:
    return f"worked solution of {q}{MARKER}{gold}"


def records(round_: dict[str, list[Response]], gold: dict[str, str]) -> list[dict]:
    """The same responses as the rollout records them."""
    out = []
    for q, responses in round_.items():
        for i, r in enumerate(responses):
            correct = r.answer == gold[q]
            output = r.text if r.answer is None else f"{r.text}{MARKER}{r.answer}"
            out.append(
                {
                    "problem_id": q,
                    "sample": i,
                    "completion": output,
                    "answer": r.answer,
                    "correct": correct,
                    "hinted": False,
                    "reward": bstar.reward_score(r.steps, correct),
                }
            )
    return out


class StubTask:
    """What training_data asks of a task, with the reference solutions above."""

    def __init__(self, gold: dict[str, str]):
        self.gold = gold

    def reference(self, problem: Problem) -> str:
        return reference(problem.id, self.gold[problem.id])

    def prompt(self, problem: Problem, hint: bool = False) -> str:
        return problem.id

    def train_prompt(self, problem: Problem) -> str:
        return problem.id

    def leaks_hint(self, completion: str) -> bool:
        return False


def problems(gold: dict[str, str]) -> list[Problem]:
    return [Problem(q, q, a, "1") for q, a in gold.items()]


def config(**bstar_keys):
    return resolve({"method": "bstar", "bstar": bstar_keys})


def selftaught_choice(by_t, gold, cfg):
    b, task, asked = cfg.bstar, StubTask(gold), problems(gold)
    candidates = {
        t: bstar_candidates(cfg, task, asked, records(r, gold))[0] for t, r in by_t.items()
    }
    return bstar.choose_configuration(
        candidates,
        b.n_star,
        search_grid(cfg),
        target=b.search_target,
        empty=b.empty_queries,
        queries=list(gold),
    )


# -- hand-checked cases --------------------------------------------------------------------
RIGHT, WRONG = [0.9, 0.8], [0.5]  # scores 1.16 and 0.1


def _minimal_case():
    """The issue's case: at T=0.5 one query solved by all 8 samples, one by none; at T=0.7
    both solved by 4 of 8."""
    gold = {"a": "1", "b": "2"}

    def answers(q, n_right, n):
        right = [Response(f"{q} way {i}", gold[q], RIGHT) for i in range(n_right)]
        return right + [Response(f"{q} way {i}", "0", WRONG) for i in range(n_right, n)]

    by_t = {0.5: {"a": answers("a", 8, 8), "b": answers("b", 0, 8)}}
    by_t[0.7] = {"a": answers("a", 4, 8), "b": answers("b", 4, 8)}
    return by_t, gold


def test_the_issues_minimal_case_picks_the_official_temperature():
    by_t, gold = _minimal_case()
    official_t, effects = determine_temperature(
        {t: official_items(r, gold, random.Random(0)) for t, r in by_t.items()}, 3550
    )
    assert official_t == 0.7 and effects == [pytest.approx(0.5625), pytest.approx(0.625)]
    # by hand: at T=0.5 a keeps its 8 and the reference (9 of 9 right: 1.0), b the reference
    # alone (1/8), 0.5625; at T=0.7 each keeps 4 samples and the reference, 5/8 each, 0.625
    chosen = selftaught_choice(by_t, gold, config())
    assert chosen == {
        "temperature": 0.7,
        "threshold": 0.1,  # the lowest tau above the wrong ones' 0.1 (strict)
        "balance_score": 0.625,
        "scores": {0.5: 0.5625, 0.7: 0.625},
    }


def test_tau_1_dropped_the_unsolved_query_and_changed_the_choice():
    by_t, gold = _minimal_case()
    # the old default grid ended at 1.0, where the reference (s = 1.0) is not kept: b keeps
    # nothing at T=0.5 and leaves the mean, which a alone then sets to 1.0
    old = selftaught_choice(by_t, gold, config(threshold_max=1.0))
    assert (old["temperature"], old["threshold"], old["balance_score"]) == (0.5, 1.0, 1.0)
    # counting every asked query (b scores 0) gives the official choice back, even with 1.0
    zero = selftaught_choice(by_t, gold, config(threshold_max=1.0, empty_queries="zero"))
    assert (zero["temperature"], zero["balance_score"]) == (0.7, 0.625)


def test_the_per_query_cap_by_hand():
    gold = {"q": "7"}
    right = [Response(f"right {i}", "7", [s]) for i, s in enumerate([0.5, 0.45, 0.4])]
    round_ = {"q": [*right, Response("wrong 0", "3", [0.75]), Response("wrong 1", "3", [0.5])]}
    items = official_items(round_, gold, random.Random(0))
    # target 2: cap 1 keeps 1 response, cap 2 keeps 2 (the two best right ones, 1.1 and 1.09)
    # at every tau: 2/8 everywhere, so the lowest tau
    best, best_hyper, _, _ = sweep(items, 2)
    assert (best, round(best_hyper, 2)) == (0.25, -1.0)
    cfg = config(search_target=2)
    assert selftaught_choice({0.8: round_}, gold, cfg)["threshold"] == -1.0
    assert selftaught_choice({0.8: round_}, gold, cfg)["balance_score"] == 0.25
    # no cap: tau = 0.15 keeps the 3 right ones and the reference: 4/8
    best, best_hyper, _, _ = sweep(items, 10**6)
    assert (best, round(best_hyper, 2)) == (0.5, 0.15)
    chosen = selftaught_choice({0.8: round_}, gold, config(search_target=None))
    assert (chosen["threshold"], chosen["balance_score"]) == (0.15, 0.5)


def test_the_cap_counts_copies_before_they_are_merged():
    gold = {"q": "7"}
    same = Response("same", "7", [0.9])
    round_ = {"q": [same, same, Response("other", "7", [0.8])]}
    cfg = config(search_target=2)
    # cap 2 keeps the two copies, one response after de-duplication; cap 3 reaches 2
    cands, asked = bstar_candidates(cfg, StubTask(gold), problems(gold), records(round_, gold))
    assert bstar.cap_at(cands, 0.0, 2, asked) == 3
    assert find_rewardbase(official_items(round_, gold, random.Random(0)), 0.0, 2)[0] == 2 / 8


# -- random rounds ---------------------------------------------------------------------------
def random_round(rng: random.Random, temperatures: list[float]):
    """Queries with a pool of rationales each (a rationale is one text, one answer, one set
    of step scores: copies score alike), sampled with more spread at higher T."""
    gold = {f"q{i}": str(rng.randint(0, 9)) for i in range(rng.randint(1, 6))}
    by_t = {}
    for t in temperatures:
        round_ = {}
        for q, answer in gold.items():
            skill = rng.random()
            pool = []
            for j in range(rng.randint(1, 12)):
                right = rng.random() < skill
                marked = rng.random() > 0.1
                ans = answer if right else str((int(answer) + rng.randint(1, 9)) % 10)
                steps = [rng.uniform(0.01, 0.99) for _ in range(rng.randint(1, 4))]
                pool.append(Response(f"{q} T{t} r{j}", ans if marked else None, steps))
            k = rng.randint(1, 14)
            round_[q] = [rng.choice(pool[: max(1, int(len(pool) * t))]) for _ in range(k)]
        by_t[t] = round_
    return by_t, gold


def _near(value, best, tol=1e-12):
    return abs(value - best) <= tol


@pytest.mark.parametrize("target", ["defaults", None, 2, 5, 9])
def test_random_rounds_choose_what_the_official_code_chooses(target):
    rng = random.Random(str(target))
    if target == "defaults":  # train_bstar.sh: --valid_sample_size 3550, MATH_TARGET_SIZE
        cfg, search_target, train_target = config(), 3550, 67500
    else:  # no target: the official cap stops at 64, more than any query here has
        cfg = config(search_target=target, train_target=target)
        search_target = train_target = 10**9 if target is None else target
    checked = 0
    for _ in range(50):
        temperatures = sorted(rng.sample(list(bstar.TEMPERATURES), rng.randint(1, 4)))
        by_t, gold = random_round(rng, temperatures)
        ana = {t: official_items(r, gold, rng) for t, r in by_t.items()}
        official_t, effects = determine_temperature(ana, search_target)
        chosen = selftaught_choice(by_t, gold, cfg)
        assert chosen["balance_score"] == pytest.approx(max(effects), abs=1e-12)
        tied = [t for t, e in zip(sorted(ana), effects, strict=True) if _near(e, max(effects))]
        # np.mean and math.fsum may round equal scores an ulp apart: the lowest tied T wins
        assert chosen["temperature"] == (official_t if len(tied) == 1 else tied[0])

        # the round at the chosen T: tau swept again (metric_modiacc_auto) and trained on
        t = chosen["temperature"]
        best, best_hyper, best_data, scores = sweep(ana[t], train_target)
        rows, picked = training_set(cfg, StubTask(gold), problems(gold), records(by_t[t], gold))
        assert picked["balance_score"] == pytest.approx(best, abs=1e-12)
        first = next(tau for tau, s in scores if _near(s, best))
        assert picked["threshold"] == round(first, 2)
        if round(first, 2) != round(best_hyper, 2):
            continue  # an ulp picked the official tau: its data may differ, its score not
        official_rows = {
            (d["query"], d["output"]) for d in best_data if not d["output"].startswith("worked")
        }
        assert {(r["problem_id"], r["completion"]) for r in rows} == official_rows
        checked += 1
    assert checked >= 40
