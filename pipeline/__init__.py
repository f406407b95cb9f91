"""regiontag: MRI region tagging for brain and spinal-cord T2/FLAIR scans.

Research software, not a medical device.
"""

__version__ = "0.1.0"
