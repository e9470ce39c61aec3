"""The setup a run's numbers depend on, and what a resume on another one reports."""

import torch

from selftaught.environment import NUMERIC_KEYS, cpu_name, describe, differences


def test_describe_names_every_numeric_key():
    now = describe()
    assert set(now) == set(NUMERIC_KEYS)
    assert now["threads"] == torch.get_num_threads() and now["torch"] == torch.__version__
    assert now["cpu"] and isinstance(now["gpus"], list)


def test_cpu_name_reads_cpuinfo_and_falls_back(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU @ 2.00GHz\nflags\t: fpu\n")
    assert cpu_name(info) == "Some CPU @ 2.00GHz"
    assert cpu_name(tmp_path / "missing")  # platform's answer, never empty


def test_differences_are_the_numeric_keys_that_changed():
    before = {**describe(), "after": None, "time": "then"}
    now = {**before, "threads": before["threads"] + 1, "after": "2/eval", "time": "now"}
    assert differences(before, now) == {"threads": (before["threads"], before["threads"] + 1)}
    assert differences(before, before) == {}
    assert differences({}, describe()).keys() == set(NUMERIC_KEYS)  # an entry of old
