"""HTML reports: one self-contained page per session and one per batch.

Reports read only the output contract (``regiontag.outputs.contract``), so they can be
regenerated at any time with ``regiontag report OUTPUT_DIR``.  Other tools add
sections to the batch page with
``report.batch.write_batch_report(..., extra_sections=[report.extra.ExtraSection(...)])``.
Research software, not a medical device.
"""
