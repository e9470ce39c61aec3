"""Ray really starts a local cluster, and two workers sample the built-in model through it.

One cluster for the whole file (starting it and loading a model in each worker costs
10-30 s on two cores); the last test closes it.
"""

from __future__ import annotations

import pytest

from selftaught.config import SamplingConfig
from selftaught.models.ray_sampler import shard_seed, split
from selftaught.models.sampling import HFSampler, make_sampler
from selftaught.tasks import AdditionTask

MAX_NEW = 64
TASK = AdditionTask(1, 2, train_size=14)
PROMPTS = [TASK.prompt(p) for p in TASK.train_problems()] + ["x", "Input:\n7 + 8\n"]


def test_split_covers_every_item_once_in_order():
    assert split(10, 4) == [(0, 3), (3, 6), (6, 8), (8, 10)]
    assert split(3, 8) == [(0, 1), (1, 2), (2, 3)]  # never an empty shard
    assert split(0, 4) == []
    for n in range(0, 30):
        for parts in range(1, 9):
            bounds = split(n, parts)
            assert [i for lo, hi in bounds for i in range(lo, hi)] == list(range(n))


def test_shard_seeds_are_stable_and_distinct():
    assert shard_seed(0, 1) == shard_seed(0, 1)
    seeds = {shard_seed(s, k) for s in range(20) for k in range(20)}
    assert len(seeds) == 400


@pytest.fixture(scope="module")
def base():
    from selftaught.config_files import resolve
    from selftaught.models.base_model import base_model_path
    from tests.conftest import TOY

    return base_model_path(resolve(TOY, "toy"))  # M of conftest's toy config, cached


@pytest.fixture(scope="module")
def sampler(base):
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'selftaught[ray]'")
    config = SamplingConfig(backend="ray", ray_workers=2, max_new_tokens=MAX_NEW, batch_size=8)
    sampler = make_sampler(config, base)  # the factory the loop uses; a local cluster
    yield sampler
    sampler.close()


def test_factory_starts_two_workers_on_a_local_cluster(sampler):
    import ray

    from selftaught.models.ray_sampler import RaySampler

    assert isinstance(sampler, RaySampler)
    assert sampler.started_cluster
    assert len(sampler.actors) == 2
    assert ray.cluster_resources()["CPU"] >= 2


def test_greedy_equals_hf_in_prompt_order(sampler, base):
    seen: list[int] = []
    counts: list[int] = []
    out, stats = sampler.generate(
        PROMPTS, 1, 0.0, 0, lambda n, tokens=0: (seen.append(n), counts.append(tokens))
    )
    reference, _ = HFSampler(base, batch_size=8, max_new_tokens=MAX_NEW).generate(
        PROMPTS, 1, 0.0, 0
    )
    assert out == reference
    assert "<scratch>" in out[0][0].text  # a trained model, not noise
    # 16 prompts, 2 workers, 4 shards each: progress moves shard by shard
    assert seen == [2] * 8
    assert stats.tokens == sum(g.tokens for (g,) in out) == sum(counts)


def test_samples_are_reproducible_per_seed(sampler):
    a, _ = sampler.generate(PROMPTS, 3, 1.0, 5)
    b, _ = sampler.generate(PROMPTS, 3, 1.0, 5)
    c, _ = sampler.generate(PROMPTS, 3, 1.0, 6)
    assert [len(g) for g in a] == [3] * len(PROMPTS)
    assert a == b
    assert a != c
    assert all(0 < g.tokens <= MAX_NEW for gens in a for g in gens)


def test_no_prompts_no_work(sampler):
    out, stats = sampler.generate([], 2, 1.0, 0)
    assert out == [] and stats.tokens == 0


def test_a_sampler_that_joined_a_running_cluster_leaves_it_running(sampler, base):
    import ray

    from selftaught.models.ray_sampler import RaySampler

    # the local cluster's two CPUs are the first sampler's: this worker asks for none
    joined = RaySampler(base, workers=1, cpus_per_worker=0, sampler_kwargs={"max_new_tokens": 8})
    assert not joined.started_cluster
    (one,), _ = joined.generate(["Input:\n1 + 1\nTarget:\n"], 1, 0.0, 0)
    assert 0 < one[0].tokens <= 8
    joined.close()
    assert ray.is_initialized()
    assert sampler.generate(PROMPTS[:2], 1, 0.0, 0)[0][0][0].text.startswith("<scratch>")


def test_reload_samples_the_new_model(sampler, tmp_path):
    from selftaught.models.tiny import save_new_tiny

    other = save_new_tiny(tmp_path / "other", 64, 2, 2, seed=3)
    sampler.reload(other)
    out, _ = sampler.generate(PROMPTS[:4], 1, 0.0, 0)
    reference, _ = HFSampler(other, max_new_tokens=MAX_NEW).generate(PROMPTS[:4], 1, 0.0, 0)
    assert out == reference


def test_close_shuts_down_the_cluster_it_started(sampler):  # last: it ends the cluster
    import ray

    sampler.close()
    assert not ray.is_initialized()
    sampler.close()  # twice is harmless


def test_the_loop_samples_through_two_ray_workers_as_through_hf(tmp_path):
    """After the test above: the loop starts a local cluster of its own, and closes it."""
    import copy

    import ray

    from selftaught.config_files import resolve
    from selftaught.loop import run
    from selftaught.store import RunStore
    from tests.conftest import TOY

    raw = copy.deepcopy(TOY)
    raw["iterations"] = 1
    hf_rows = run(resolve(raw, "toy"), tmp_path / "hf")
    raw["sampling"] = {**raw["sampling"], "backend": "ray", "ray_workers": 2}
    ray_rows = run(resolve(raw, "toy with ray"), tmp_path / "ray")
    assert not ray.is_initialized()  # the loop closed the cluster its sampler started

    def comparable(rows):
        return [
            {k: v for k, v in r.items() if k not in ("seconds", "tokens_per_second")} for r in rows
        ]

    assert comparable(ray_rows) == comparable(hf_rows)  # greedy STaR: the same samples
    train = [
        (RunStore(out).iter_dir(1) / "train.jsonl").read_text()
        for out in (tmp_path / "hf", tmp_path / "ray")
    ]
    assert train[0] == train[1]
    assert ray_rows[-1]["train_examples"] > 0
