import json

from typer.testing import CliRunner

from selftaught.cli import app
from selftaught.store import read_jsonl

runner = CliRunner()


def toy_args(toy_raw) -> list[str]:
    args = []
    for section, values in toy_raw.items():
        if isinstance(values, dict):
            args += [f"--set={section}.{k}={v}" for k, v in values.items()]
        else:
            args += [f"--set={section}={str(values).lower()}"]
    return args


def test_run_then_resume_then_eval(tmp_path, toy_raw):
    toy_raw["iterations"] = 1
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "--out", str(out), "-q", *toy_args(toy_raw)])
    assert result.exit_code == 0, result.output
    assert "iteration 1/1: accuracy" in result.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2

    again = runner.invoke(app, ["run", "--out", str(out), "-q", *toy_args(toy_raw)])
    assert again.exit_code == 2 and "--resume" in again.output

    resumed = runner.invoke(app, ["run", "--resume", str(out), "-q"])
    assert resumed.exit_code == 0, resumed.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2

    model = out / "iter_0001" / "model"
    evaluated = runner.invoke(app, ["eval", str(model), *toy_args(toy_raw)])
    assert evaluated.exit_code == 0, evaluated.output
    figures = json.loads(evaluated.stdout)
    metrics = json.loads((out / "metrics.jsonl").read_text().splitlines()[1])
    assert figures["accuracy_by_bucket"] == metrics["accuracy_by_bucket"]


def test_user_mistakes_exit_2_without_a_traceback(tmp_path):
    cases = [
        ["run", "--set", "train.stpes=3"],
        ["run", str(tmp_path / "missing.yaml")],
        ["run", "--resume", str(tmp_path)],
        ["eval", str(tmp_path)],
        ["base", "--set", "model.name_or_path=gpt2"],
        ["refilter", str(tmp_path), "--iteration", "1"],
        ["compare", str(tmp_path)],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "error:" in result.output and "Traceback" not in result.output


def test_tasks_and_config_commands():
    assert "addition" in runner.invoke(app, ["tasks"]).output
    shown = runner.invoke(app, ["config", "--set", "train.steps=9"]).output
    assert "steps: 9" in shown and "method: star" in shown


def test_refilter_redoes_selection_and_compare_tabulates_runs(tmp_path, toy_raw):
    toy_raw.update(method="rest-em", iterations=1)
    toy_raw["sampling"]["num_samples"] = 3
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", "--out", str(out), "-q", *toy_args(toy_raw)]).exit_code == 0
    train = read_jsonl(out / "iter_0001" / "train.jsonl")

    result = runner.invoke(
        app, ["refilter", str(out), "--iteration", "1", "--set", "selection.max_per_problem=1"]
    )
    assert result.exit_code == 0, result.output
    capped = read_jsonl(out / "iter_0001" / "refiltered.jsonl")
    ids = [r["problem_id"] for r in capped]
    assert len(ids) == len(set(ids)) == len({r["problem_id"] for r in train})
    assert len(capped) < len(train)  # several correct samples per problem were kept before

    wrong = runner.invoke(app, ["refilter", str(out), "--iteration", "1", "--set", "train.lr=1"])
    assert wrong.exit_code == 2 and "only selection" in wrong.output

    table = runner.invoke(app, ["compare", str(out), str(out), "--out", str(out / "compare")])
    assert table.exit_code == 0, table.output
    header, _, first, second = table.output.strip().splitlines()
    assert "best pass@1" in header and "examples trained" in header
    assert first == second and "| rest-em |" in first
