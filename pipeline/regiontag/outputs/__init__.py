"""The output contract and its writers: file names, table columns, atomic writes, provenance.

``from regiontag import outputs`` gives the contract (:mod:`regiontag.outputs.contract`):
``outputs.REGIONS_CSV``, ``outputs.write_csv`` ...
"""

from regiontag.outputs.contract import *  # noqa: F401,F403 - the contract is this package's face
