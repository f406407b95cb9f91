"""HTML reports: one self-contained page per session and one per batch.

Reports read only the output contract (``pipeline.outputs``), so they can be
regenerated at any time with ``regiontag report OUTPUT_DIR``.
Research software, not a medical device.
"""

from pipeline.report.batch import write_batch_report
from pipeline.report.session import write_session_report

__all__ = ["write_session_report", "write_batch_report"]
