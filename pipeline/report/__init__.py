"""HTML reports: one self-contained page per session and one per batch.

Reports read only the output contract (``pipeline.outputs``), so they can be
regenerated at any time with ``regiontag report OUTPUT_DIR``.  Other tools add
sections to the batch page with ``write_batch_report(..., extra_sections=[ExtraSection(...)])``.
Research software, not a medical device.
"""

from pipeline.report.batch import write_batch_report
from pipeline.report.extra import ExtraSection
from pipeline.report.session import write_session_report

__all__ = ["ExtraSection", "write_batch_report", "write_session_report"]
