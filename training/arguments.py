"""The arguments of ``training/train.py``: typed dataclasses for ``HfArgumentParser``, config files and presets.

Precedence, later wins: a preset, then a config file (YAML or JSON), then keywords given from Python, then the
command line. The layers under the command line are the parser's defaults, never argv strings.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePath
from typing import Literal

import torch
from transformers import HfArgumentParser, TrainingArguments

from dataset_script.hardware import cpu_has_native_bf16
from dataset_script.schema import EVAL_FRAMES_PER_VIDEO


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default="mesoinception4",
        metadata={"help": "a timm model name (resnet50, legacy_xception, mesoinception4, ...), a saved detector "
                          "folder, or a Hub id"},
    )  # fmt: skip
    input_size: int | None = field(
        default=None, metadata={"help": "square input side; default: the paper's size for its models (224 for "
                                        "ResNets, 256 for Xception and MesoInception-4), else the model's own"}
    )  # fmt: skip
    crop_pct: float | None = field(
        default=None,
        metadata={"help": "1.0 resizes the whole frame to the input (the paper); 0.5 with input 128 takes the centre "
                          "128 pixels of a 256 frame at native resolution; default: a saved detector's own, else 1.0"},
    )  # fmt: skip
    freeze_backbone: bool = field(
        default=False, metadata={"help": "train the new classifier only (the paper does this for Xception)"}
    )
    pretrained: Literal["auto", "imagenet", "random"] = field(
        default="auto",
        metadata={"help": "auto: ImageNet weights if they are in the local HF cache, random otherwise"},
    )
    loss: Literal["cross_entropy", "mse"] = field(
        default="cross_entropy",
        metadata={"help": "mse: mean squared error on the fake probability, MesoNet's original objective"},
    )
    fit_decision_offset: bool = field(
        default=False,
        metadata={"help": "after training, move the head's decision to where the validation clips at every quality "
                          "of the dataset (raw, c23, c40) are best told apart (Platt scaling's offset); the test "
                          "metrics, the saved detector and so the Space decide there. Off: the network's own "
                          "decision, as the paper reports it"},
    )  # fmt: skip
    channels_last: bool | None = field(
        default=None,
        metadata={"help": "channels_last memory format; default: on where training runs in bf16 (oneDNN's bf16 "
                          "convolutions are slower than fp32's without it), off otherwise"},
    )  # fmt: skip


@dataclass
class DataArguments:
    dataset_name: str = field(
        default="deepfake_mnist_plus", metadata={"help": "a built dataset repo folder or a Hub dataset id"}
    )
    dataset_config_name: str = field(
        default="raw",
        metadata={"help": "raw, c23, c40, or mixed (a random quality each time a video is drawn); add -<action> "
                          "for one action's subset, e.g. c23-yaw"},
    )  # fmt: skip
    split_protocol: Literal["paper", "identity"] = field(
        default="paper", metadata={"help": "paper: 70/15/15 per class by file name; identity: identity-disjoint"}
    )
    frames_per_video: int = field(
        default=8, metadata={"help": "random frames taken from a video each time it is drawn"}
    )
    eval_frames_per_video: int = field(
        default=EVAL_FRAMES_PER_VIDEO, metadata={"help": "evenly spaced frames per video at validation"}
    )
    test_frames_per_video: int = field(
        default=EVAL_FRAMES_PER_VIDEO,
        metadata={"help": "evenly spaced frames per video in the test after training; the default 32 is "
                          "DeepfakeBench's protocol, for numbers comparable with other detectors'"},
    )  # fmt: skip
    test_config_names: str | None = field(
        default=None,
        metadata={"help": "comma-separated configs to test on after training; default: the training quality "
                          "(all three for mixed); 'none' skips the test"},
    )  # fmt: skip
    max_fake_videos: int | None = field(
        default=None, metadata={"help": "keep this many training fakes (equal per action) and as many reals (Fig. 3)"}
    )
    real_fake_ratio: str | None = field(
        default=None, metadata={"help": "'R:F': thin one training class to reals:fakes = R:F (Fig. 4)"}
    )
    train_action: str | None = field(
        default=None, metadata={"help": "train on one action's fakes and as many reals (Fig. 5)"}
    )
    frame_cache_dir: str | None = field(
        default=None,
        metadata={"help": "decode each video once into uint8 frames at the model's input size under this folder "
                          "and read later epochs from there (input^2 x 3 bytes a frame on disk); faster when "
                          "decoding costs more than the model's step, as with light models on a CPU"},
    )  # fmt: skip
    decoder: Literal["torchcodec", "decord"] = field(default="torchcodec", metadata={"help": "video decoder"})
    augment: bool = field(
        default=False,
        metadata={"help": "training frames only: each video's face crops go through what an upload does to them "
                          "(a crop a few pixels off and up to 1.35x tighter, a resize by 0.75 to 1.33 and back with "
                          "random kernels, an H.264 re-encode at CRF 18 to 40, mild blur and noise: "
                          "dataset_script.upload_augment), then are mirrored half the time and their colour "
                          "channels scaled by 0.9 to 1.1"},
    )  # fmt: skip


@dataclass
class RunArguments:
    config: str | None = field(default=None, metadata={"help": "a YAML or JSON file of any of these arguments"})
    preset: Literal["none", "paper", "demo", "smoke"] = field(
        default="none", metadata={"help": "paper: the paper's recipe; demo: make demo's; smoke: a few seconds"}
    )
    resume: bool = field(default=False, metadata={"help": "continue from the last checkpoint in --output_dir"})


ARGUMENT_CLASSES = (ModelArguments, DataArguments, TrainingArguments, RunArguments)

PAPER_RECIPE = {
    # Adam (AdamW with no weight decay), lr 2e-4, polynomial decay, 50 epochs, 64 frames a step (8 videos x 8
    # frames), best model by validation accuracy. The paper prints beta1=0.999, beta2=0.9: swapped; we use
    # Adam's (0.9, 0.999).
    "optim": "adamw_torch",
    "weight_decay": 0.0,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "learning_rate": 2e-4,
    "lr_scheduler_type": "polynomial",
    "num_train_epochs": 50,
    "frames_per_video": 8,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 4,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "load_best_model_at_end": True,
    "metric_for_best_model": "frame_accuracy",
    "save_total_limit": 2,
}

PAPER_PER_MODEL: dict[str, dict] = {
    "mesoinception4": {"loss": "mse"},  # MesoNet's own objective, as the paper follows it
    "legacy_xception": {"freeze_backbone": True},  # the paper trains the new classifier only
}

PRESETS: dict[str, dict] = {
    "none": {},
    "paper": PAPER_RECIPE,
    # A plain ResNet (resnet10t, 4.9M parameters, no high-pass input) on the centre 128x128 of each 256 frame at
    # native resolution: the mini's fakes carry what FOMM's generator leaves (decoded from 64x64 features,
    # part of the fine detail re-invented a few pixels off), which a plain detector finds in its first epoch;
    # resizing would average the finest of it away. 2 CPU cores train it in about three minutes with
    # --frame_cache_dir. The identity-disjoint split, because under the paper's split a person can be mostly
    # real in training and mostly fake in test, so what a detector learns of faces hurts it there.
    "demo": {
        **PAPER_RECIPE,
        "model_name_or_path": "resnet10t",
        "input_size": 128,
        "crop_pct": 0.5,
        "split_protocol": "identity",
        "learning_rate": 2e-3,
        # Validation frame AUC is about 0.99 after the first epoch, but accuracy swings between epochs (0.99, 0.84,
        # 0.99) while the ranking stays perfect: the threshold moves. More epochs leave more steps at a small
        # learning rate; the validation loss, unlike frame accuracy (which ties at 1.0 and keeps the first epoch to
        # reach it), sees how far each frame is from the threshold, so it keeps the most settled epoch. On the mini
        # cut from whole frames, with upload augmentation, six epochs were not enough (one seed: c23 0.93, c40 0.75
        # video accuracy; eight: 0.98, 0.85); with the zoom-in reframe eight missed a bar in 2 seeds of 10, which
        # ten epochs reached. benchmarks/demo_reliability measures it: docs/benchmarks.md.
        "num_train_epochs": 10,
        "metric_for_best_model": "loss",
        # 14 training people are few: mirroring and colour gains leave the generator's traces and vary the rest
        # (the mini's one room per video does most: see the README's reliability figures).
        "augment": True,
        "warmup_steps": 10,
        # 4 videos x 8 frames a step
        "per_device_train_batch_size": 4,
        "frames_per_video": 8,
        "eval_frames_per_video": 8,
        "dataloader_num_workers": 1,
        "dataloader_persistent_workers": True,
        "logging_steps": 10,
    },
    "smoke": {
        "num_train_epochs": 1,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 4,
        "frames_per_video": 2,
        "eval_frames_per_video": 4,
        "test_frames_per_video": 4,  # scoring is most of a smoke run's work: 4 frames a video show it works
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "logging_steps": 1,
    },
}


def _read_config(path: str) -> dict:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = file.read_text()
    if file.suffix.lower() in (".yaml", ".yml"):
        import yaml

        values = yaml.safe_load(text) or {}
    elif file.suffix.lower() == ".json":
        values = json.loads(text)
    else:
        raise ValueError(f"config file {path}: use a .yaml, .yml or .json file")
    if not isinstance(values, dict):
        raise ValueError(f"config file {path}: expected a mapping of argument names to values")
    return values


def native_bf16(use_cpu: bool) -> bool:
    """Whether the device training will run on computes in bf16 natively: a CUDA GPU that supports it, or a CPU
    with AVX-512 BF16 or AMX. Elsewhere bf16 is emulated and slower than fp32."""
    if torch.cuda.is_available() and not use_cpu:
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def choose_precision(parser: HfArgumentParser, argv: list[str], layers: dict) -> None:
    """TrainingArguments' ``--bf16`` made "auto": where no layer (preset, config file, command line) gives it, the
    parser's default becomes bf16 mixed precision where the device computes in it natively (``native_bf16``) and fp16
    was not asked for, fp32 elsewhere; ``--bf16 false`` keeps fp32 anywhere. channels_last, unless given, follows
    bf16. ``layers``: the defaults the parser already has from the layers under the command line ``argv``."""
    parser.set_defaults(**{key: None for key in ("bf16", "channels_last") if key not in layers})  # no layer gave it
    given, _ = parser.parse_known_args(argv)
    bf16 = (not given.fp16 and native_bf16(given.use_cpu)) if given.bf16 is None else given.bf16
    defaults = {"bf16": bf16, "channels_last": bf16 if given.channels_last is None else given.channels_last}
    if bf16 and not torch.cuda.is_available():
        defaults["use_cpu"] = True  # TrainingArguments refuses bf16 without a GPU unless told the CPU is meant
    parser.set_defaults(**defaults)


def autocast_dtype(training_args: TrainingArguments) -> torch.dtype | None:
    """The half-precision type training runs its forward passes in (the Trainer's autocast), or None for fp32."""
    return torch.bfloat16 if training_args.bf16 else torch.float16 if training_args.fp16 else None


def describe_precision(training_args: TrainingArguments, channels_last: bool) -> str:
    """The precision for the model card: what the forward passes ran in, and that the weights stayed fp32."""
    dtype = autocast_dtype(training_args)
    precision = "fp32" if dtype is None else f"{'bf16' if dtype == torch.bfloat16 else 'fp16'} autocast, fp32 weights"
    return precision + (", channels_last" if channels_last else "")


def argument_parser() -> HfArgumentParser:
    """The parser of train.py's four dataclasses, with the project's progress switch."""
    parser = HfArgumentParser(ARGUMENT_CLASSES)
    # the project's one progress switch, beside the Trainer's own name for it
    parser.add_argument("--no_progress", dest="disable_tqdm", action="store_const", const=True,
                        default=argparse.SUPPRESS, help="no progress bars (as --disable_tqdm true)")  # fmt: skip
    return parser


def layered_defaults(given: argparse.Namespace, values: dict) -> dict:
    """The defaults under the command line: the preset, then the paper's settings for the model, then the config
    file, then ``values``. ``given``: what the command line itself says of the preset, the config file, the model
    and the output folder (None where it is silent), so that a value derived from them follows the last layer
    that gives them."""
    config = given.config or values.get("config")
    file_values = _read_config(config) if config else {}
    above = {**file_values, **values}
    preset = given.preset or above.get("preset") or "none"
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    model = given.model_name_or_path or above.get("model_name_or_path") or PRESETS[preset].get(
        "model_name_or_path", ModelArguments.model_name_or_path)  # fmt: skip
    per_model = PAPER_PER_MODEL.get(Path(model).name, {}) if preset == "paper" else {}
    layers = {**PRESETS[preset], **per_model, **above, "preset": preset, "model_name_or_path": model}
    if given.output_dir is None:
        layers.setdefault("output_dir", str(Path("runs") / Path(model).name))
    return layers


def parse_arguments(
    argv: list[str] | tuple[str, ...] = (), **values
) -> tuple[ModelArguments, DataArguments, TrainingArguments, RunArguments]:
    """train.py's arguments from four layers, the last winning: a preset, a config file, ``values`` (keywords from
    Python: ``parse_arguments(preset="smoke", dataset_name=...)``) and the command line ``argv``. Each layer under
    the command line becomes the parser's defaults, and argparse reads the command line as given (once to learn
    what it says of the preset, the config file, the model and the output folder, then for good).
    ``--output_dir`` defaults to ``runs/<model>``."""
    argv = list(argv)
    values = {key: str(value) if isinstance(value, PurePath) else value for key, value in values.items()}
    known = {option.name for arguments in ARGUMENT_CLASSES for option in fields(arguments)}
    if unknown := sorted(set(values) - known):
        raise ValueError(f"unknown arguments {unknown} (see train.py --help)")
    # the command line's own word on what the layers derive from: parsed with nothing beneath it
    parser = argument_parser()
    parser.set_defaults(config=None, preset=None, model_name_or_path=None, output_dir=None)
    given, _ = parser.parse_known_args(argv)
    layers = layered_defaults(given, values)
    if unknown := sorted(set(layers) - known):
        raise ValueError(f"unknown arguments {unknown} in the config file {given.config or values.get('config')}")
    parser = argument_parser()
    parser.set_defaults(**layers)
    choose_precision(parser, argv, layers)
    model_args, data_args, training_args, run_args, unknown = parser.parse_args_into_dataclasses(
        argv, return_remaining_strings=True
    )
    if unknown:
        raise SystemExit(f"unknown arguments: {' '.join(unknown)} (see --help)")
    return model_args, data_args, training_args, run_args
