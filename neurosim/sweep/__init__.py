"""Parameter sweeps: an experiment's grid of settings and seeds, one task per cell, on dask.

``neurosim sweep NAME|CONFIG`` (:mod:`neurosim.sweep.cli`) cuts an experiment of
:mod:`neurosim.experiments` into independent cells (:mod:`neurosim.sweep.grid`), runs
them on a local or an existing ``dask.distributed`` cluster, or one after another
(:mod:`neurosim.sweep.cluster`, :mod:`neurosim.sweep.runner`), writes each finished
cell atomically into the sweep's directory, resumes an interrupted sweep, and
summarizes the rows over seeds with t confidence intervals (:mod:`neurosim.sweep.stats`).
"""

from neurosim.sweep.grid import Cell, SweepSpec, load_spec, make_spec
from neurosim.sweep.runner import SweepReport, load_rows, run_sweep
from neurosim.sweep.stats import Interval, paired_interval, summary_rows, t_interval

__all__ = ["Cell", "Interval", "SweepReport", "SweepSpec", "load_rows", "load_spec", "make_spec", "paired_interval",
           "run_sweep", "summary_rows", "t_interval"]
