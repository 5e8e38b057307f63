"""Run records: folders with config, metrics and summaries."""

from graftlab.report.run import markdown_table, new_run_folder, write_run

__all__ = ["markdown_table", "new_run_folder", "write_run"]
