import json

from typer.testing import CliRunner

from selftaught.cli import app

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
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "error:" in result.output and "Traceback" not in result.output


def test_tasks_and_config_commands():
    assert "addition" in runner.invoke(app, ["tasks"]).output
    shown = runner.invoke(app, ["config", "--set", "train.steps=9"]).output
    assert "steps: 9" in shown and "method: star" in shown
