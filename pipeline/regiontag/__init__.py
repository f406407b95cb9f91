"""regiontag: MRI region tagging for brain and spinal-cord T2/FLAIR scans.

Research software, not a medical device.

A small public API: ``regiontag.__version__`` and the functions below.  They are
imported on first use (PEP 562 module ``__getattr__``), so ``import regiontag`` and
``regiontag --version`` stay fast.

Routine Listings
----------------
load_config
    The run configuration (:func:`regiontag.config.load_config`).
discover_sessions
    Sessions found in an input folder (:func:`regiontag.inputs.discovery.discover_sessions`).
run_session
    One session end to end (:func:`regiontag.workflows.session.run_session`).
run_batch
    All sessions of an input folder, in parallel (:func:`regiontag.workflows.batch.run_batch`).
tag_mask
    Tag a lesion mask made elsewhere (:func:`regiontag.workflows.tag.tag_mask`).

Examples
--------
>>> import regiontag
>>> regiontag.__version__
'0.1.0'
>>> config = regiontag.load_config()
>>> config.involvement.confluent_min_ml
3.0
>>> sessions = regiontag.discover_sessions("scans/", config)  # doctest: +SKIP
>>> summary = regiontag.run_batch("scans/", "out/", config, workers=2)  # doctest: +SKIP
>>> from pathlib import Path
>>> result = regiontag.tag_mask(Path("lesion_space-MNI152.nii.gz"), Path("tagged"), config,
...                             space="MNI152")  # doctest: +SKIP
>>> result.region_table.head()  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> module that defines it (imported on first access).
_LAZY = {
    "load_config": "regiontag.config",
    "discover_sessions": "regiontag.inputs.discovery",
    "run_session": "regiontag.workflows.session",
    "run_batch": "regiontag.workflows.batch",
    "tag_mask": "regiontag.workflows.tag",
}

__all__ = ["__version__", "discover_sessions", "load_config", "run_batch", "run_session", "tag_mask"]

if TYPE_CHECKING:
    from regiontag.config import load_config
    from regiontag.inputs.discovery import discover_sessions
    from regiontag.workflows.batch import run_batch
    from regiontag.workflows.session import run_session
    from regiontag.workflows.tag import tag_mask


def __getattr__(name: str) -> Any:
    """Import a public function on first access (PEP 562).

    Examples
    --------
    >>> import regiontag
    >>> regiontag.load_config.__module__
    'regiontag.config'
    """
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'regiontag' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    """Module attributes including the lazily imported public names."""
    return sorted(set(globals()) | set(_LAZY))
