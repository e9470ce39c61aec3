import io
import time

from rich.console import Console

from selftaught.progress import Reporter


def render(quiet: bool) -> str:
    out = io.StringIO()
    reporter = Reporter(quiet, Console(file=out, force_terminal=True, width=200))
    with reporter.phase("sample", 4, "samples") as bar:
        for _ in range(4):
            time.sleep(0.05)
            bar.advance(1, tokens=50)
    with reporter.phase("train", 3, "steps") as bar:
        for step in range(3):
            time.sleep(0.05)
            bar.advance(1, f"loss {1.0 / (step + 1):.4f}")
    reporter.line("iteration 1/1: accuracy 50.0%")
    return out.getvalue()


def test_bars_show_each_phase_rate_tokens_and_loss():
    text = render(quiet=False)
    assert "samples/s" in text and "tokens/s" in text  # sampling: its rate and throughput
    assert "steps/s" in text and "loss 0.3333" in text  # training: its rate and last loss
    assert "iteration 1/1" in text


def test_quiet_mode_prints_only_the_summary_lines():
    assert render(quiet=True) == "iteration 1/1: accuracy 50.0%\n"
