"""Run records: folders with config, metrics and summaries."""

from graftlab.report.run import (
    is_graftlab_run,
    markdown_table,
    new_run_folder,
    not_a_run_error,
    write_run,
)

__all__ = ["is_graftlab_run", "markdown_table", "new_run_folder", "not_a_run_error",
           "write_run"]
