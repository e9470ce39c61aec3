"""The expert-iteration loop: sample -> check -> rationalize -> select -> train ->
evaluate, one phase at a time, each resumable (``phases.py`` lists them)."""

from selftaught.loop.lifecycle import default_run_dir, run

__all__ = ["default_run_dir", "run"]
