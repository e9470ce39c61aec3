"""Reading runs back: one summary per run, a side-by-side table, and ``selftaught
report``'s ``report.md`` with its plots.

Reads only the run directory (``metrics.jsonl``, ``config.yaml``, ``iter_*/stats.json``),
never a model, so reporting is instant, works on a run still going, and on runs copied
from another machine. Metrics rows are read as ``records.MetricsRow``.

    labels.py   names and orders both tables and figures use: buckets, pass@k columns,
                B-STaR's rounds, phases
    runs.py     RunData, load_run, metrics_rows; summarize, summarize_run (a compare row)
    tables.py   table (the markdown writer), markdown_table, and the report's tables
    plots.py    the figures, as matplotlib Figures (no pyplot)
    write.py    write_report, report_markdown, write_compare

Imports go labels <- runs, tables, plots <- write <- this file, all at module level.
"""

from selftaught.report.runs import RunData, load_run, summarize, summarize_run
from selftaught.report.tables import markdown_table, table
from selftaught.report.write import report_markdown, write_compare, write_report

__all__ = [
    "RunData",
    "load_run",
    "markdown_table",
    "report_markdown",
    "summarize",
    "summarize_run",
    "table",
    "write_compare",
    "write_report",
]
