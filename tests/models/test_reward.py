import random

import pytest
import torch
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from selftaught.models.base_model import base_model_path
from selftaught.models.reward import (
    HFRewardModel,
    RewardExample,
    class_weights,
    step_end_positions,
    train_reward_model,
)
from selftaught.models.tiny import build_tokenizer, save_new_tiny
from selftaught.models.train_loop import TrainingError
from selftaught.tasks import AdditionTask, Problem
from selftaught.tasks.addition import spaced

TASK = AdditionTask(1, 1)
PAIRS = [(a, b) for a in range(1, 10) for b in range(1, 10)]  # every 1-digit sum
random.Random(0).shuffle(PAIRS)
HELD_OUT, TRAIN = PAIRS[:27], PAIRS[27:]


@pytest.fixture(scope="module")
def base():
    # the toy config of conftest's ``toy_config``, resolved here because a module-scoped
    # fixture cannot use that function-scoped one; M comes from the session's cache
    from selftaught.config import resolve
    from tests.conftest import TOY

    return base_model_path(resolve(TOY, "toy"))


def prompt(a: int, b: int) -> str:
    return TASK.prompt(Problem("p", f"{spaced(a)} + {spaced(b)}", spaced(a + b), "1"))


def wrong_answer(a: int, b: int, w: int) -> str:
    """The right scratchpad, then a wrong final answer."""
    return AdditionTask.solution(a, b).rsplit("\n", 1)[0] + "\n" + spaced(w)


def wrong_line(a: int, b: int, w: int) -> str:
    """The right final answer after a scratchpad whose result line is wrong."""
    lines = AdditionTask.solution(a, b).split("\n")
    lines[2] = f", {w % 10} C: {w // 10}"
    return "\n".join(lines)


def outcome_examples(pairs, rng: random.Random) -> list[tuple[RewardExample, bool]]:
    out = []
    for a, b in pairs:
        out.append((RewardExample(prompt(a, b), [AdditionTask.solution(a, b)], [True]), True))
        for corrupt in (wrong_answer, wrong_line):
            w = a + b + rng.choice([-3, -2, -1, 1, 2, 3])
            w = w if w >= 0 else a + b + 1
            out.append((RewardExample(prompt(a, b), [corrupt(a, b, w)], [False]), False))
    return out


@pytest.fixture(scope="module")
def outcome_rm(base, tmp_path_factory):
    path = tmp_path_factory.mktemp("rm") / "outcome"
    examples = [ex for ex, _ in outcome_examples(TRAIN, random.Random(1))]
    seen = []
    result = train_reward_model(
        base,
        examples,
        150,
        path,
        seed=0,
        batch_size=32,
        lr=1e-3,
        progress=lambda s, _: seen.append(s),
    )
    assert seen == list(range(1, 151)) and result.steps == 150 and result.tokens > 0
    return path


def auc(pos: list[float], neg: list[float]) -> float:
    """ROC-AUC as the share of (positive, negative) pairs ranked right; ties count half."""
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def test_outcome_rm_separates_correct_from_incorrect_on_held_out_sums(outcome_rm):
    held = outcome_examples(HELD_OUT, random.Random(2))
    scores = HFRewardModel(outcome_rm).score(
        [ex.prompt for ex, _ in held], [ex.steps for ex, _ in held]
    )
    assert all(len(s) == 1 and 0.0 <= s[0] <= 1.0 for s in scores)
    pos = [s[0] for s, (_, ok) in zip(scores, held, strict=True) if ok]
    neg = [s[0] for s, (_, ok) in zip(scores, held, strict=True) if not ok]
    assert sum(pos) / len(pos) > sum(neg) / len(neg)
    # measured: 0.986 with seed 0, 0.90-0.99 over seeds 0-4 (chance is 0.5)
    assert auc(pos, neg) > 0.85


def test_reloaded_checkpoint_is_safetensors_and_scores_the_same(outcome_rm):
    assert (outcome_rm / "model.safetensors").exists()
    assert not list(outcome_rm.glob("*.bin")) and not list(outcome_rm.parent.glob("*.tmp"))
    held = [ex for ex, _ in outcome_examples(HELD_OUT[:6], random.Random(3))]
    prompts, steps = [ex.prompt for ex in held], [ex.steps for ex in held]
    first = HFRewardModel(outcome_rm, batch_size=4).score(prompts, steps)
    again = HFRewardModel(outcome_rm, batch_size=4).score(prompts, steps)
    assert first == again
    # batching (right padding, rows sorted by length) does not change a sample's score
    alone = [
        HFRewardModel(outcome_rm, batch_size=1).score([p], [s])[0]
        for p, s in zip(prompts, steps, strict=True)
    ]
    assert torch.allclose(torch.tensor(first), torch.tensor(alone), atol=1e-5)


def test_process_rm_scores_every_step_and_marks_steps_from_the_first_wrong_one(base, tmp_path):
    def lines(a, b):
        return AdditionTask.solution(a, b).splitlines(keepends=True)

    def wrong_third(a, b, rng):
        # an impossible carry (a 1-digit sum carries 0 or 1) in the 3rd step: an error the
        # model can spot locally, so a short run learns it; what is under test is that
        # per-step labels train per-step scores, not the model's arithmetic
        steps = lines(a, b)
        steps[2] = steps[2][:-2] + str(rng.randint(2, 9)) + "\n"
        return steps

    def examples(pairs, rng):
        out = []
        for a, b in pairs:
            ok, bad = lines(a, b), wrong_third(a, b, rng)
            assert "".join(ok) == AdditionTask.solution(a, b) and len(ok) == len(bad) == 6
            out.append(RewardExample(prompt(a, b), ok, [True] * 6))
            out.append(RewardExample(prompt(a, b), bad, [True, True] + [False] * 4))
        return out

    path = tmp_path / "process"
    train_reward_model(
        base, examples(TRAIN[:40], random.Random(1)), 150, path, seed=0, batch_size=16, lr=1e-3
    )
    held = examples(HELD_OUT, random.Random(2))
    scores = HFRewardModel(path).score([ex.prompt for ex in held], [ex.steps for ex in held])
    assert all(len(s) == 6 and all(0.0 <= x <= 1.0 for x in s) for s in scores)
    ok, bad = scores[0::2], scores[1::2]
    for o, b in zip(ok, bad, strict=True):
        # the first two steps are the same text: a causal model must score them the same
        assert o[:2] == pytest.approx(b[:2], abs=1e-6)
    for k in range(2, 6):
        mean_ok = sum(s[k] for s in ok) / len(ok)
        mean_bad = sum(s[k] for s in bad) / len(bad)
        assert mean_bad < mean_ok - 0.3, (k, mean_ok, mean_bad)  # measured: ~0.99 vs ~0.01


def test_step_ends_with_the_char_level_tokenizer():
    tokenizer = build_tokenizer()
    steps = ["<scratch>\n", "4 + 3 , C: 0\n", "", ", 7 C: 0\n", "7"]
    ids, positions = step_end_positions(tokenizer, "Input:\n4 + 3\n", steps)
    text = "Input:\n4 + 3\n" + "".join(steps)
    assert len(ids) == len(text)
    ends = [len("Input:\n4 + 3\n") + len("".join(steps[: k + 1])) - 1 for k in range(len(steps))]
    assert positions == ends  # the empty step ends where the step before it does
    assert [text[p] for p in positions] == ["\n", "\n", "\n", "\n", "7"]


def test_step_ends_with_a_multi_character_word_level_tokenizer():
    pieces = ["Q", ":", " ", "12", "+", "34", "\n", "sum", "46", "ok"]
    core = Tokenizer(models.WordLevel({p: i for i, p in enumerate(["<unk>", *pieces])}, "<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"\d+|[a-z]+|[\s\S]"), behavior="isolated")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>")
    prompt = "Q: 12 + 34\n"
    # tokens: Q : _ 12 _ + _ 34 \n | sum _ 46 \n ok   (indices 0-8 | 9-13)
    ids, positions = step_end_positions(tokenizer, prompt, ["sum 46\n", "ok"])
    assert len(ids) == 14 and positions == [12, 13]
    # a step ending inside a token ("46" split as "4" | "6") ends at that token
    assert step_end_positions(tokenizer, prompt, ["sum 4", "6\n", "ok"])[1] == [11, 12, 13]
    assert step_end_positions(tokenizer, prompt, ["sum 46", "\nok"])[1] == [11, 13]


def test_step_ends_with_a_trained_bpe_tokenizer():
    corpus = [prompt(a, b) + AdditionTask.solution(a, b) for a, b in PAIRS]
    core = Tokenizer(models.BPE(unk_token="<unk>"))  # no pre-tokenizer: merges cross lines
    core.train_from_iterator(
        corpus, trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>"], show_progress=False)
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>")
    mid_token = 0
    for a, b in PAIRS[:20]:
        steps = AdditionTask.solution(a, b).splitlines(keepends=True)
        ids, positions = step_end_positions(tokenizer, prompt(a, b), steps)
        pieces = tokenizer.convert_ids_to_tokens(ids)
        assert "".join(pieces) == prompt(a, b) + "".join(steps)
        assert max(len(p) for p in pieces) > 1
        token_ends = [len("".join(pieces[: i + 1])) for i in range(len(pieces))]
        end = len(prompt(a, b))
        for step, pos in zip(steps, positions, strict=True):
            end += len(step)
            # the token at ``pos`` holds the step's last character
            assert token_ends[pos] - len(pieces[pos]) <= end - 1 < token_ends[pos]
            mid_token += token_ends[pos] != end
    assert mid_token > 0  # some steps do end inside a token, so that case is exercised


def test_class_weights_give_each_class_half_the_loss():
    w_pos, w_neg = class_weights([True, True, True, False])
    assert 3 * w_pos == pytest.approx(1 * w_neg)
    assert (3 * w_pos + w_neg) / 4 == pytest.approx(1.0)  # the mean weight stays 1
    assert class_weights([True, True]) == (1.0, 1.0)


def test_bad_inputs_are_refused(tmp_path):
    with pytest.raises(TrainingError, match="no reward examples"):
        train_reward_model(tmp_path / "missing", [], 5, tmp_path / "out", seed=0)
    tiny = save_new_tiny(tmp_path / "tiny", 32, 2, 2, seed=0)
    with pytest.raises(ValueError, match="2 steps but 1 labels"):
        train_reward_model(tiny, [RewardExample("p", ["a", "b"], [True])], 5, tmp_path / "out", 0)
    with pytest.raises(ValueError, match="longer than the model's context"):
        HFRewardModel(tiny).score(["x" * 1100], [["y"]])
    with pytest.raises(TrainingError, match="loss is (nan|inf)"):
        examples = [
            RewardExample("1 + 1 = ", ["2"], [True]),
            RewardExample("1 + 1 = ", ["3"], [False]),
        ]
        train_reward_model(tiny, examples, 20, tmp_path / "out", seed=0, lr=1e30)
    assert not (tmp_path / "out").exists()
