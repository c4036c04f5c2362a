"""One experiment by name, from its settings (``ExperimentArguments``, what ``python -m training.experiments``
takes) to its record: the paper's, the ones across datasets, and robustness."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dataset_script.schema import IDENTITY_SPLIT_PREFIX, QUALITIES
from training.experiments.across_datasets import CROSS_EXPERIMENTS, TABLE2_METHODS
from training.experiments.cells import DatasetRef, Experiment, RunSettings
from training.experiments.grid import run
from training.experiments.paper import EXPERIMENTS, MINI_COUNTS, PAPER_COUNTS, QUICK_MODELS

NAMES = sorted({*EXPERIMENTS, *CROSS_EXPERIMENTS, "robustness"})


@dataclass
class ExperimentArguments:
    """One experiment's settings, as ``python -m training.experiments`` takes them (see its --help)."""

    experiment: str
    dataset_name: str = "deepfake_mnist_plus"
    scale: str = "quick"
    models: str | None = None
    split_protocol: str | None = None
    counts: str | None = None
    qualities: str | None = None
    cross_dataset_name: str | None = None
    methods: str = ",".join(TABLE2_METHODS)
    unseen_dataset_name: str | None = None
    train_config: str | None = None
    model_dir: Path | None = None
    perturbations: str | None = None
    test_on: str | None = None
    cross_split_protocol: str | None = None
    seed: int = 42
    output_dir: Path = Path("experiments")
    frame_cache_dir: Path | None = None


def _repo_configs(repo: str) -> list[str]:
    from datasets import get_dataset_config_names

    return get_dataset_config_names(repo)


def _split_protocol(repo: str, config: str, scale: str) -> str:
    """``identity`` where the repo has identity-disjoint splits (generated data) and the scale is not the paper's;
    else ``paper``: the official splits of FaceForensics++ and Celeb-DF, and the paper's of DeepFake MNIST+."""
    from datasets import get_dataset_split_names

    if scale == "paper":
        return "paper"
    return "identity" if f"{IDENTITY_SPLIT_PREFIX}train" in get_dataset_split_names(repo, config) else "paper"


def _role(repo: str) -> str:
    return repo.rstrip("/").rsplit("/", 1)[-1]


def cross_experiment(args: ExperimentArguments, models) -> tuple[Experiment, dict[str, DatasetRef]]:
    """The experiment across datasets that ``args`` name, and the datasets besides the main one, by role."""
    from training.experiments.across_datasets import CROSS, table2_config

    factory = CROSS_EXPERIMENTS[args.experiment]
    if args.experiment == "table2":
        if not args.cross_dataset_name:
            raise SystemExit("table2 needs --cross_dataset_name: a FaceForensics++ repo built by dataset_script.build")
        methods = tuple(args.methods.split(","))
        present = set(_repo_configs(args.cross_dataset_name))
        # raw, as the paper trains; else the best quality present (users often download c23 only)
        quality = next((q for q in QUALITIES if all(table2_config(q, m) in present for m in methods)), None)
        if quality is None:
            raise SystemExit(f"{args.cross_dataset_name} holds no quality with all of {', '.join(methods)} "
                             f"(its configurations: {', '.join(sorted(present))})")  # fmt: skip
        experiment = factory(models, quality, methods)
        cross = (args.cross_dataset_name, table2_config(quality, methods[0]))
        repos = {CROSS: cross}
    elif args.experiment == "unseen_generator":
        if not args.unseen_dataset_name:
            raise SystemExit("unseen_generator needs --unseen_dataset_name: a repo of another animator's fakes")
        experiment = factory(models)
        repos = {CROSS: (args.unseen_dataset_name, QUALITIES[0])}
    else:
        if not args.test_on:
            raise SystemExit("cross_dataset needs --test_on REPO[:CONFIG],...: the datasets to test on")
        train_config = args.train_config or _repo_configs(args.dataset_name)[0]
        repos, tests = {}, []
        for entry in args.test_on.split(","):
            repo, _, config = entry.partition(":")
            config = config or _repo_configs(repo)[0]
            if repos.get(_role(repo), (repo,))[0] != repo:  # the folder's name heads its column and keys its results
                raise SystemExit(f"--test_on names two repos called {_role(repo)} ({repos[_role(repo)][0]} and "
                                 f"{repo}); rename one folder")  # fmt: skip
            repos[_role(repo)] = (repo, config)
            tests.append((_role(repo), config))
        experiment = factory(models, train_config, tests)
    protocol = args.cross_split_protocol
    others = {role: DatasetRef(repo, protocol or _split_protocol(repo, config, args.scale))
              for role, (repo, config) in repos.items()}  # fmt: skip
    return experiment, others


def robustness(args: ExperimentArguments, models, frame_cache: Path | None) -> dict:
    """The robustness experiment (``training.experiments.robustness``) that ``args`` name: on ``--model_dir``,
    tested on the configuration and split it was trained on unless ``--train_config`` and ``--split_protocol`` say
    otherwise; else on a cell trained on ``--train_config`` (default: the first configuration)."""
    from training.experiments.robustness import RobustnessConfig, run_robustness, trained_on

    config, protocol = trained_on(args.model_dir) if args.model_dir else (None, None)
    config = args.train_config or config or _repo_configs(args.dataset_name)[0]
    protocol = args.split_protocol or protocol or _split_protocol(args.dataset_name, config, args.scale)
    perturbations = {"perturbations": tuple(args.perturbations.split(","))} if args.perturbations else {}
    settings = RobustnessConfig(args.dataset_name, config, protocol, args.output_dir, model_dir=args.model_dir,
                                model=models[0], scale=args.scale, seed=args.seed, frame_cache=frame_cache,
                                **perturbations)  # fmt: skip
    return run_robustness(settings)


def run_experiment(args: ExperimentArguments) -> dict:
    """Train and score every cell the experiment needs (those done before are kept), and write its table, plot
    and record into ``args.output_dir``; returns the record (``<experiment>.json``)."""
    # imported here, not above: modeling loads torch and timm, which --help and the tables and plots do not need
    from modeling import PAPER_MODELS

    # in the order of the paper's tables; the figures train the first, ResNet50, as the paper's do
    default_models = tuple(PAPER_MODELS) if args.scale == "paper" else QUICK_MODELS
    models = tuple(args.models.split(",")) if args.models else default_models
    frame_cache = args.frame_cache_dir or (None if args.scale == "paper" else args.output_dir / "frame_cache")
    if args.experiment == "robustness":
        return robustness(args, models, frame_cache)
    others: dict[str, DatasetRef] = {}
    if args.experiment in CROSS_EXPERIMENTS:
        experiment, others = cross_experiment(args, models)
    elif args.experiment == "figure3":
        counts = args.counts.split(",") if args.counts else (PAPER_COUNTS if args.scale == "paper" else MINI_COUNTS)
        experiment = EXPERIMENTS["figure3"](models, tuple(int(n) for n in counts))
    else:
        experiment = EXPERIMENTS[args.experiment](models)
    if args.qualities:
        keep = set(args.qualities.split(","))
        unknown = keep - {*QUALITIES, "mixed"}
        if unknown:
            raise SystemExit(f"unknown qualities {sorted(unknown)}; use raw, c23, c40 or mixed")
        experiment.cells = [cell for cell in experiment.cells if cell.train_config.split("-")[0] in keep]
    # the repo is only read when the protocol was not given
    protocol = args.split_protocol or _split_protocol(args.dataset_name, _repo_configs(args.dataset_name)[0],
                                                      args.scale)  # fmt: skip
    settings = RunSettings(args.scale, args.dataset_name, protocol, args.seed, args.output_dir, frame_cache, others)
    return run(experiment, settings)
