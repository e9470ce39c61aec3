"""``python -m selftaught``: the command line, from whichever Python runs it (for example
the virtualenv that holds vLLM's CPU build, see scripts/install.sh --vllm-venv)."""

from selftaught.cli import app

app(prog_name="selftaught")
