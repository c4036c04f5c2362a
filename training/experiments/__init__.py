"""The paper's experiments and those beyond it, apart from training and evaluation, which they drive.

``cells`` trains and scores one detector of a grid through ``training.train.train``; ``paper`` defines Tables 3
to 5 and Figures 3 to 6, ``across_datasets`` Table 2, the cross-dataset test and the unseen generator,
``robustness`` the perturbation study; ``grid`` runs an experiment and lays it out as the paper's table and plot;
``experiment`` runs one by name from its settings, and ``command`` is ``python -m training.experiments``.
``report`` gathers them beside the paper's numbers (``paper_results``), and ``cam_figure`` draws Figure 7.
"""

from training.experiments.experiment import NAMES, ExperimentArguments, run_experiment

__all__ = ["NAMES", "ExperimentArguments", "run_experiment"]
