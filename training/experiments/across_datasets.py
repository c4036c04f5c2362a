"""Experiments across datasets: the paper's Table 2, the field's cross-dataset protocol, and unseen generators.

    python -m training.experiments table2 --dataset_name DMPLUS --cross_dataset_name FFPP --scale quick
    python -m training.experiments cross_dataset --dataset_name FFPP --train_config c23 --test_on CELEBDF,DMPLUS:raw
    python -m training.experiments unseen_generator --dataset_name DMPLUS --unseen_dataset_name OTHER

Each is a list of cells (``training.experiments.cells``) that train on one dataset and are scored on others' test
splits with the same evaluation as everywhere else; the tables and plots come from the same code as the paper's
experiments.
"""

from __future__ import annotations

from dataset_script.schema import ACTIONS, QUALITIES, action_config_name
from training.experiments.cells import MAIN, Cell, Experiment, result_key

CROSS = "cross"
"""Table 2's second dataset (FaceForensics++) and the unseen generator's dataset."""

TABLE2_METHODS = ("Deepfakes", "NeuralTextures", "Face2Face")
"""The FaceForensics++ manipulations of the paper's Table 2, in its row order."""

DMPLUS_ROW = "DeepFake MNIST+"
OWN, ON_DMPLUS = "own test set", "on DeepFake MNIST+"
FINE_TUNED_OWN, FINE_TUNED_DMPLUS = "DM+ detector fine-tuned: own test set", "DM+ detector fine-tuned: on DM+"


def table2_config(quality: str, method: str) -> str:
    """A FaceForensics++ configuration of one manipulation: its fakes and the originals they were made from."""
    return f"{quality}-{method}"


def table2(models, quality: str = "raw", methods=TABLE2_METHODS, dmplus_config: str = "raw") -> Experiment:
    """A detector trained on each FF++ manipulation, tested on its own test set and on DM+; and the DM+ detector
    fine-tuned with each, tested on both. The paper trains ResNet50 at raw quality."""
    model = models[0]
    dmplus = Cell(model, dmplus_config, (dmplus_config,))
    cells = [dmplus]
    for method in methods:
        config = table2_config(quality, method)
        cells.append(Cell(model, config, (config,), train_on=CROSS, other_tests=((MAIN, dmplus_config),)))
        cells.append(Cell(model, config, (config,), train_on=CROSS, other_tests=((MAIN, dmplus_config),),
                          init_from=dmplus))  # fmt: skip

    def place(cell: Cell, key: str) -> tuple[str, str]:
        if cell.train_on == MAIN:
            return DMPLUS_ROW, OWN
        method = cell.train_config.split("-", 1)[1]
        on_dmplus = key == result_key(MAIN, dmplus_config)
        if cell.init_from is None:
            return method, ON_DMPLUS if on_dmplus else OWN
        return method, FINE_TUNED_DMPLUS if on_dmplus else FINE_TUNED_OWN

    title = f"Table 2: detectors trained on FaceForensics++ ({quality}) tested on DeepFake MNIST+, and fine-tuned"
    return Experiment("table2", title, cells, place, "trained on", (OWN, ON_DMPLUS, FINE_TUNED_OWN, FINE_TUNED_DMPLUS))


def cross_dataset(models, train_config: str, tests: list[tuple[str, str]]) -> Experiment:
    """Train on the main dataset's ``train_config``; test there and on each (role, configuration) of ``tests``."""

    def place(cell: Cell, key: str) -> tuple[str, str]:
        return cell.model, "own test set" if key == train_config else key.replace(":", " ")

    cells = [Cell(m, train_config, (train_config,), other_tests=tuple(tests)) for m in models]
    return Experiment("cross_dataset", f"Cross-dataset: trained on {train_config}, tested on others", cells, place)


def unseen_generator(models, qualities=QUALITIES) -> Experiment:
    """Detectors trained on the main dataset's fakes (FOMM) per quality, tested per action on the same actions
    made by the generator they saw and by one they never saw (the ``cross`` dataset), at the same quality."""
    per_action = {q: tuple(action_config_name(q, a) for a in ACTIONS) for q in qualities}
    cells = [Cell(models[0], q, (q, *per_action[q]), other_tests=tuple((CROSS, c) for c in (q, *per_action[q])))
             for q in qualities]  # fmt: skip

    def place(cell: Cell, key: str) -> tuple[str, str]:
        role, config = key.split(":", 1) if ":" in key else (MAIN, key)
        action = config.split("-", 1)[1] if "-" in config else "all actions"
        return action, f"{cell.train_config} {'seen' if role == MAIN else 'unseen'} generator"

    title = "Unseen generator: trained on one animator's fakes, tested per action on another's"
    return Experiment("unseen_generator", title, cells, place, "action")


CROSS_EXPERIMENTS = {"table2": table2, "cross_dataset": cross_dataset, "unseen_generator": unseen_generator}
