import pytest

from selftaught.models.tiny import save_new_tiny
from selftaught.samplers import hf
from selftaught.samplers.base import cut_at_stop
from selftaught.samplers.hf import HFSampler, _generated_length, shared_prefix_length


@pytest.fixture(scope="module")
def sampler(tmp_path_factory):
    path = save_new_tiny(tmp_path_factory.mktemp("tiny"), 32, 2, 2, seed=0)
    return HFSampler(path, batch_size=3, max_new_tokens=12)


PROMPTS = ["Input:\n1 + 1\nTarget:\n", "Input:\n1 2 3 + 4 5 6\nTarget:\n", "x", "Input:\n7 + 8\n"]


def test_returns_n_generations_per_prompt_in_prompt_order(sampler):
    out, stats = sampler.generate(PROMPTS, 2, temperature=1.0, seed=0)
    assert [len(g) for g in out] == [2, 2, 2, 2]
    assert stats.tokens == sum(g.tokens for gens in out for g in gens)
    assert all(0 < g.tokens <= 12 for gens in out for g in gens)
    # each prompt alone gives what it gave in a batch of others, greedily
    greedy, _ = sampler.generate(PROMPTS, 1, temperature=0.0, seed=0)
    for prompt, (gen,) in zip(PROMPTS, greedy, strict=True):
        (alone,), _ = sampler.generate([prompt], 1, temperature=0.0, seed=0)
        assert alone[0].text == gen.text


def test_same_seed_same_samples(sampler):
    a, _ = sampler.generate(PROMPTS, 3, temperature=1.0, seed=5)
    b, _ = sampler.generate(PROMPTS, 3, temperature=1.0, seed=5)
    c, _ = sampler.generate(PROMPTS, 3, temperature=1.0, seed=6)
    assert a == b
    assert a != c


def test_progress_counts_every_generation_and_its_tokens(sampler):
    seen, counts = [], []
    _, stats = sampler.generate(
        PROMPTS, 2, 1.0, 0, lambda n, tokens=0: (seen.append(n), counts.append(tokens))
    )
    assert sum(seen) == 8
    assert sum(counts) == stats.tokens > 0


def test_generated_length_stops_at_eos_and_drops_padding():
    assert _generated_length([5, 6, 2, 0, 0], eos=2, pad=0) == 3
    assert _generated_length([5, 6, 0, 0], eos=2, pad=0) == 2
    assert _generated_length([5, 6, 7], eos=2, pad=0) == 3
    assert _generated_length([5, 9, 6, 2, 0], eos=[2, 9], pad=0) == 2


def test_cut_at_first_stop_string():
    assert cut_at_stop("abc\n\nInput: x", ("\n\nInput:",)) == "abc"
    assert cut_at_stop("a|b#c", ("#", "|")) == "a"
    assert cut_at_stop("abc", ()) == "abc"


def test_a_stop_string_ends_the_row_while_generating(sampler):
    """The row stops at the token that completes the stop, which is all that is counted;
    without the stop the same row runs to max_new_tokens."""
    (free,), _ = sampler.generate([PROMPTS[0]], 1, 0.0, 0)
    assert free[0].tokens == 12 and len(free[0].text) > 4
    stop = free[0].text[3:5]
    stopping = HFSampler(sampler.model.name_or_path, max_new_tokens=12, stop=(stop,))
    (cut,), _ = stopping.generate([PROMPTS[0]], 1, 0.0, 0)
    assert cut[0].text == free[0].text[: free[0].text.index(stop)]
    assert cut[0].tokens < 12


def test_greedy_rows_are_those_of_transformers_generate(sampler):
    """The decoding loop and its attention are ours (rows leave the batch as they end);
    greedily it writes what ``generate`` writes for each prompt, with transformers' own
    attention (sdpa)."""
    import torch

    from selftaught.models.loading import load_model

    tokenizer, model = sampler.tokenizer, load_model(sampler.model.name_or_path)
    assert model.config._attn_implementation == "sdpa" != sampler.model.config._attn_implementation
    ours, _ = sampler.generate(PROMPTS, 1, temperature=0.0, seed=0)
    for prompt, (gen,) in zip(PROMPTS, ours, strict=True):
        enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=12, do_sample=False)
        row = out[0, enc["input_ids"].shape[1] :].tolist()
        assert gen.text == tokenizer.decode(row, skip_special_tokens=True)
        assert gen.tokens == len(row)


def rows_per_forward(sampler, max_new_tokens: int, monkeypatch):
    """PROMPTS generated greedily with a stop string that ends some rows early (a character
    the model writes): the generations, their stats and the rows of each forward pass."""
    (free,), _ = sampler.generate([PROMPTS[1]], 1, 0.0, 0)
    stop = (free[0].text[2],)
    stopping = HFSampler(sampler.model.name_or_path, max_new_tokens=max_new_tokens, stop=stop)
    rows_run = []
    forward = type(stopping.model).forward

    def counting(model, input_ids=None, **kwargs):
        rows_run.append(input_ids.shape[0])
        return forward(model, input_ids=input_ids, **kwargs)

    monkeypatch.setattr(type(stopping.model), "forward", counting)
    out, stats = stopping.generate(PROMPTS, 1, 0.0, 0)
    return out, stats, rows_run


def test_a_row_that_ends_leaves_the_batch(sampler, monkeypatch):
    """Rows that ended leave once they are a quarter of the batch; in a batch of 4 every
    end is, so each forward pass runs only rows still going: a row of n new tokens is in
    n passes (its prefill and n - 1 steps), and the passes' rows add up to the tokens
    generated, where ``generate`` would run every row until the longest ends."""
    out, stats, rows_run = rows_per_forward(sampler, 12, monkeypatch)
    lengths = sorted(gens[0].tokens for gens in out)
    assert lengths[0] < lengths[-1]  # some rows end early, some go on
    assert sum(rows_run) == stats.tokens < len(PROMPTS) * lengths[-1]
    assert rows_run == sorted(rows_run, reverse=True)


def test_rows_that_ended_leave_with_the_cache_s_next_copy(sampler, monkeypatch):
    """Short of ``LEAVE_AT``'s share (here never), rows that ended still leave, at the step
    before the cache regrows: the copy it makes then drops them (kv_cache.regrows_next)."""
    monkeypatch.setattr(hf, "LEAVE_AT", 0.0)
    out, stats, rows_run = rows_per_forward(sampler, 40, monkeypatch)
    lengths = sorted(gens[0].tokens for gens in out)
    assert lengths[0] < lengths[-1]
    assert rows_run == sorted(rows_run, reverse=True) and rows_run[-1] < len(PROMPTS)
    assert sum(rows_run) < len(PROMPTS) * lengths[-1]


EXEMPLARS = "".join(f"Input:\n{a} + {a}\nTarget:\n{2 * a}\n\n" for a in range(1, 8))
FEW_SHOT = [EXEMPLARS + f"Input:\n{q}\nTarget:\n" for q in ("1 + 1", "2 3 + 4", "9 + 9 9 9")]


def test_shared_prefix_length_leaves_each_row_a_token():
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 5]]) == 2
    assert shared_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2
    assert shared_prefix_length([[7], [7, 8]]) == 0
    assert shared_prefix_length([[1, 2], [3, 2]]) == 0


def test_a_shared_prefix_run_once_gives_the_generations_of_a_padded_batch(sampler, monkeypatch):
    """Few-shot prompts: the exemplars' cache is computed once and copied to every row;
    greedy rows and their token counts are those of the plain left-padded batch."""
    calls = []
    original = HFSampler._after_shared_prefix
    monkeypatch.setattr(
        HFSampler,
        "_after_shared_prefix",
        lambda self, ids, n, static: calls.append(n) or original(self, ids, n, static),
    )
    shared, _ = sampler.generate(FEW_SHOT, 2, temperature=0.0, seed=0)
    assert calls and min(calls) >= len(EXEMPLARS)  # one token per character
    monkeypatch.setattr(hf, "SHARED_PREFIX_MIN", 10**9)
    plain, _ = sampler.generate(FEW_SHOT, 2, temperature=0.0, seed=0)
    assert shared == plain
    assert len(calls) == 2  # batches of 3 rows: 2 of them, none since
    assert sampler.prefix_apart  # held once beside the rows' cache (decode_attention.py)


def test_a_model_that_does_not_hand_the_prefix_to_attention_gets_it_copied(sampler, monkeypatch):
    """A held prefix reaches attention as a keyword argument of the model's forward; a
    model that drops it is caught after its first pass, and its rows get the prefix
    copied into their cache: the same generations."""
    fresh = HFSampler(sampler.model.name_or_path, batch_size=3, max_new_tokens=12)
    forward = type(fresh.model).forward

    def dropping(model, *args, shared_prefix=None, **kwargs):
        return forward(model, *args, **kwargs)

    monkeypatch.setattr(type(fresh.model), "forward", dropping)
    copied, _ = fresh.generate(FEW_SHOT, 2, temperature=0.0, seed=0)
    assert not fresh.prefix_apart
    monkeypatch.setattr(hf, "SHARED_PREFIX_MIN", 10**9)
    assert copied == fresh.generate(FEW_SHOT, 2, temperature=0.0, seed=0)[0]


@pytest.fixture(scope="module")
def shipped():
    """The shipped M: real scratchpads that end (end-of-sequence) at different lengths."""
    from selftaught.models.base_model import SHIPPED

    return next(p for p in SHIPPED.iterdir() if p.is_dir())


SUMS = [f"Input:\n{q}\nTarget:\n" for q in ("1 + 1", "2 3 + 4 5", "9 8 7 + 6 5 4", "5 + 7")]


@pytest.mark.parametrize("stop", [(), (" C: 1",)], ids=["eos", "stop string"])
def test_compiled_generate_s_path_gives_the_same_rows(shipped, stop):
    """On CUDA the sampler calls ``generate`` with a static cache instead (rows cannot
    leave a compiled graph's batch): the same greedy rows, counts and stops, here on CPU,
    plain and (exemplars before the sums, which M was not trained with) with a shared
    prefix."""
    sampler = HFSampler(shipped, batch_size=3, max_new_tokens=90, stop=stop)
    few_shot = ["".join(SUMS[:3]).replace("Target:\n", "Target:\n0\n\n") + q for q in SUMS]
    for prompts in (SUMS, few_shot):
        ours, _ = sampler.generate(prompts, 1, 0.0, 0)
        sampler.rows_leave = False
        static, _ = sampler.generate(prompts, 1, 0.0, 0)
        sampler.rows_leave = True
        assert static == ours
    ours, _ = sampler.generate(SUMS, 1, 0.0, 0)
    assert len({gens[0].tokens for gens in ours}) == len(SUMS)  # each row ends at its own length
    worked = "<scratch>\n2 3 + 4 5 , C: 0\n2 + 4 , 8 C: 0\n, 6 8 C: 0\n0 6 8\n</scratch>\n6 8"
    assert ours[1][0].text == (worked.split(stop[0])[0] if stop else worked)
