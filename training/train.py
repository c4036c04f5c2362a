"""Train a DeepFake MNIST+ detector with the Hugging Face Trainer.

    accelerate launch training/train.py --model_name_or_path resnet50 --dataset_name deepfake_mnist_plus \\
        --dataset_config_name c23 --preset paper --output_dir runs/resnet50-c23
    python training/train.py --preset demo --dataset_name demo_output/deepfake_mnist_plus
    dmplus train --preset demo --dataset_name demo_output/deepfake_mnist_plus      # the same

A step sees ``per_device_train_batch_size`` videos x ``frames_per_video`` random frames each. Validation takes
``eval_frames_per_video`` evenly spaced frames per video and reports frame accuracy and AUC; the best epoch by
validation frame accuracy is kept (with ``load_best_model_at_end``). After training, the test split of each
test configuration is scored with ``test_frames_per_video`` (32) evenly spaced frames per video, and
``--output_dir`` gets ``model.safetensors``, ``config.json`` (loadable by transformers and timm) and a
``README.md`` model card.
A temperature fitted on the validation frames' logits calibrates the outputs: ``config.json`` records it as
``calibration_temperature`` and the card gives the test frames' expected calibration error before and after.
With ``--fit_decision_offset``, the head's decision is first moved to where the validation
clips at every quality are best told apart, before anything is tested or saved.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
import transformers
from datasets import concatenate_datasets
from transformers import EvalPrediction, Trainer, TrainingArguments, enable_full_determinism, set_seed
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from dataset_script.console import configure_logging
from dataset_script.faces import dataset_face_crop
from dataset_script.files import write_text_atomically
from dataset_script.frames import FrameCache, FrameSampler, collate_frames, keep_freed_memory
from dataset_script.schema import QUALITIES
from dataset_script.upload_augment import describe_augmentation
from modeling import PAPER_MODELS, DetectorInfo, detector, fake_probability, save_detector, timm_model_of, wrap
from training.arguments import (
    DataArguments,
    ModelArguments,
    RunArguments,
    autocast_dtype,
    describe_precision,
    parse_arguments,
)
from training.calibration import Calibration, calibrate, fake_margin, fit_decision_offset, shift_decision
from training.data import MIXED, Subset, apply_subset, class_counts, load_split, split_name, with_sampling
from training.evaluation import predict_splits
from training.metrics import accuracy, auc
from training.model_card import ModelCard, describe_training_data
from training.records import package_versions

logger = logging.getLogger("training.train")

RECIPE_KEYS = ("learning_rate", "lr_scheduler_type", "optim", "adam_beta1", "adam_beta2", "weight_decay",
               "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps", "warmup_steps",
               "seed", "bf16", "fp16", "metric_for_best_model")  # fmt: skip


def frames_and_labels(rows: list[dict]) -> dict[str, torch.Tensor]:
    """What the model's forward takes: the frames of the batch's videos and a label per frame."""
    batch = collate_frames(rows)
    return {"pixel_values": batch["pixel_values"], "labels": batch["labels"]}


def mse_loss(outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """MesoNet's objective: squared error between the fake probability and the label."""
    return F.mse_loss(fake_probability(outputs.logits), labels.float())


def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
    logits = torch.as_tensor(prediction.predictions)
    probability = fake_probability(logits).numpy()
    labels = prediction.label_ids
    return {"frame_accuracy": accuracy(labels, probability), "frame_auc": auc(labels, probability, "validation")}


def build_detector(args: ModelArguments) -> tuple[torch.nn.Module, DetectorInfo]:
    pretrained = {"auto": None, "imagenet": True, "random": False}[args.pretrained]
    # a crop left unset keeps a saved detector's own (a fresh timm model's default is the whole frame)
    crop = {} if args.crop_pct is None else {"crop_pct": args.crop_pct}
    model, info = detector(args.model_name_or_path, pretrained=pretrained, freeze_backbone=args.freeze_backbone,
                           input_size=args.input_size, **crop)  # fmt: skip
    if args.input_size and args.input_size != info.input_size:
        info.input_size = args.input_size
    return model, info


def test_config_names(data: DataArguments) -> list[str]:
    if data.test_config_names:
        return [] if data.test_config_names == "none" else [n.strip() for n in data.test_config_names.split(",")]
    config = data.dataset_config_name
    if config == MIXED or config.startswith(MIXED + "-"):
        suffix = config[len(MIXED) :]
        return [quality + suffix for quality in QUALITIES]
    return [config]


def last_complete_checkpoint(output: Path) -> str | None:
    """The newest checkpoint that was written whole; checkpoints a kill cut short are removed (with a warning)."""
    numbered = []
    for folder in output.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        suffix = folder.name.rsplit("-", 1)[-1]
        if folder.is_dir() and suffix.isdigit():
            numbered.append((int(suffix), folder))
    for _, folder in sorted(numbered, reverse=True):
        if (folder / TRAINER_STATE_NAME).is_file() and any(folder.glob("*.safetensors")):
            return str(folder)
        logger.warning("%s was cut short (no trainer state or weights); removing it", folder)
        shutil.rmtree(folder)
    return None


def check_output_dir(training_args: TrainingArguments, run: RunArguments) -> str | None:
    """The checkpoint to resume from, or None; refuses to train over an earlier run's checkpoints."""
    output = Path(training_args.output_dir)
    has_checkpoints = output.is_dir() and any(output.glob(f"{PREFIX_CHECKPOINT_DIR}-*"))
    if not run.resume:
        if has_checkpoints:
            raise SystemExit(
                f"{output} holds checkpoints of an earlier run: pass --resume true to continue it, "
                "or choose another --output_dir"
            )
        return None
    last = last_complete_checkpoint(output) if has_checkpoints else None
    if last is None:
        logger.warning("--resume: no complete checkpoint in %s yet; starting from the beginning", output)
    else:
        logger.info("resuming from %s", last)
    return last


def calibrate_on_validation(trainer: Trainer, split: str, frames_per_video: int) -> Calibration | None:
    """Temperature scaling fitted on the validation frames' logits; every process must call it (predict gathers)."""
    if not len(trainer.eval_dataset):
        logger.warning("no validation videos: the detector stays uncalibrated, its outputs scores")
        return None
    trainer.compute_metrics = None  # the logits are all we need; AUC would refuse a one-class validation split
    output = trainer.predict(trainer.eval_dataset, metric_key_prefix="calibration")
    logits = torch.as_tensor(output.predictions).float()
    fitted_on = (f"{len(logits)} frames of the validation split `{split}` ({frames_per_video} evenly spaced per "
                 "video)")  # fmt: skip
    return calibrate(logits, output.label_ids, fitted_on)


def move_decision_on_validation(
    trainer: Trainer, data_args: DataArguments, sampler: FrameSampler
) -> tuple[float, str] | None:
    """``--fit_decision_offset``: the offset fitted on the validation clips at every quality the dataset has, moved
    into the head (every process must call it: predict gathers). Each quality is what an upload may have been
    through, so the decision sits where degraded real clips are still called real as often as the data allows."""
    split = split_name("validation", data_args.split_protocol)
    parts = {}
    for quality in QUALITIES:
        try:
            parts[quality] = load_split(data_args.dataset_name, quality, split)
        except ValueError as error:  # a dataset without this quality: fit on the others
            logger.warning("decision offset: no %s validation clips (%s)", quality, error)
    validation = concatenate_datasets(list(parts.values())) if parts else None
    if validation is None or len(set(validation["label"])) < 2:
        logger.warning("decision offset: the validation clips do not hold both classes; the decision stays at 0")
        return None
    trainer.compute_metrics = None  # the logits are all we need
    output = trainer.predict(with_sampling(validation, sampler), metric_key_prefix="offset")
    margin = fake_margin(torch.as_tensor(output.predictions).float())
    offset = fit_decision_offset(margin, output.label_ids)
    shift_decision(timm_model_of(trainer.model).get_classifier(), offset)
    fitted_on = (f"{len(margin)} frames of the validation split `{split}` at {', '.join(parts)} "
                 f"({sampler.frames_per_video} evenly spaced per video)")  # fmt: skip
    logger.info("decision offset: %.4f fitted on %s, moved into the head", offset, fitted_on)
    return offset, fitted_on


def record_in_config(output: Path, values: dict) -> None:
    """Add ``values`` to the saved detector's config.json: transformers keeps unknown config keys as attributes and
    timm ignores them, so both still load it."""
    path = output / "config.json"
    config = json.loads(path.read_text())
    config.update(values)
    write_text_atomically(path, json.dumps(config, indent=2, sort_keys=True) + "\n")


def record_temperature(output: Path, calibration: Calibration | None) -> None:
    """``calibration_temperature`` in config.json; readers take its absence to mean: scores, not probabilities."""
    if calibration is not None and calibration.temperature is not None:
        record_in_config(output, {"calibration_temperature": calibration.temperature})


def input_transform(pretrained_cfg: dict) -> dict:
    """What the detector does to a face crop before its first layer (timm's evaluation transform)."""
    keys = ("input_size", "crop_pct", "interpolation", "mean", "std")
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in pretrained_cfg.items() if key in keys}  # fmt: skip


def push(folder: Path, repo_id: str, token: str | None, private: bool | None) -> str:
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="model", exist_ok=True, private=private)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type="model",
        allow_patterns=["*.safetensors", "*.json", "README.md"],
        ignore_patterns=["checkpoint-*", "runs/*", ".*"],  # the finished detector only
        commit_message="Upload DeepFake MNIST+ detector",
    )
    return str(commit)


def train(
    model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments, run_args: RunArguments
) -> dict:
    """Train, calibrate, test and save one detector in ``training_args.output_dir`` (pushed with ``push_to_hub``).
    Returns what results.json records: ``train`` (the Trainer's metrics), ``test`` (each test configuration's
    metrics), the data, its class counts and the calibration; {} in the other processes of a multi-process run.
    ``training.arguments.parse_arguments`` makes the four arguments from a preset, a config file and keywords."""
    resume_from = check_output_dir(training_args, run_args)
    keep_freed_memory()  # DataLoader workers fork after this and keep it
    push_to = training_args.hub_model_id if training_args.push_to_hub else None
    if training_args.push_to_hub and not push_to:
        raise SystemExit("--push_to_hub needs --hub_model_id ORG/NAME")
    training_args.push_to_hub = False  # we push the finished folder ourselves, never the checkpoints
    training_args.remove_unused_columns = False  # the frame sampler needs the video column
    if not torch.cuda.is_available():
        training_args.dataloader_pin_memory = False  # nothing to pin for
    if training_args.ddp_find_unused_parameters is None:
        training_args.ddp_find_unused_parameters = False  # every detector uses all its trainable parameters
    if training_args.report_to in (None, "all", ["all"]):
        training_args.report_to = []

    subset = Subset(data_args.max_fake_videos, data_args.real_fake_ratio, data_args.train_action)
    # seeded before the model is made, not only when the Trainer is: a new classifier's weights (and a random-init
    # backbone's) are drawn here, and unseeded they made every run of one --seed a different detector
    if training_args.full_determinism:
        enable_full_determinism(training_args.seed)
    else:
        set_seed(training_args.seed)
    model, info = build_detector(model_args)
    pretrained_cfg = info.pretrained_cfg(model)
    logger.info("model %s, input %d, %s weights%s", info.name, info.input_size, info.init,
                ", backbone frozen" if info.frozen_backbone else "")  # fmt: skip
    precision = describe_precision(training_args, model_args.channels_last)
    logger.info("precision: %s", precision)

    with training_args.main_process_first(desc="loading the dataset"):
        train = load_split(data_args.dataset_name, data_args.dataset_config_name,
                           split_name("train", data_args.split_protocol))  # fmt: skip
        validation = load_split(data_args.dataset_name, data_args.dataset_config_name,
                                split_name("validation", data_args.split_protocol))  # fmt: skip
    face_crop = dataset_face_crop(data_args.dataset_name)
    train = apply_subset(train, subset, training_args.data_seed or training_args.seed)
    counts = class_counts(train)
    if min(counts.values()) == 0:
        raise SystemExit(f"the training data holds {counts}: both classes are needed")
    logger.info("training on %s (%s): %d real, %d fake videos; validating on %d", data_args.dataset_name,
                data_args.dataset_config_name, counts["real"], counts["fake"], len(validation))  # fmt: skip

    cache = FrameCache(data_args.frame_cache_dir) if data_args.frame_cache_dir else None
    train_sampler = FrameSampler(pretrained_cfg, data_args.frames_per_video, train=True, decoder=data_args.decoder,
                                 cache=cache, augment=data_args.augment)  # fmt: skip
    eval_sampler = FrameSampler(pretrained_cfg, data_args.eval_frames_per_video, decoder=data_args.decoder,
                                cache=cache)  # fmt: skip
    wrapped = wrap(model, info)
    if model_args.channels_last:
        wrapped = wrapped.to(memory_format=torch.channels_last)
    trainer = Trainer(
        model=wrapped,
        args=training_args,
        train_dataset=with_sampling(train, train_sampler),
        eval_dataset=with_sampling(validation, eval_sampler, fixed_quality=True),
        data_collator=frames_and_labels,
        compute_metrics=compute_metrics,
        compute_loss_func=mse_loss if model_args.loss == "mse" else None,
    )
    train_result = trainer.train(resume_from_checkpoint=resume_from)
    # the offset first: the temperature is then fitted to the outputs the saved detector gives
    moved = move_decision_on_validation(trainer, data_args, eval_sampler) if model_args.fit_decision_offset else None
    calibration = calibrate_on_validation(trainer, split_name("validation", data_args.split_protocol),
                                          data_args.eval_frames_per_video)  # fmt: skip
    if moved is not None and calibration is not None:
        calibration.decision_offset, calibration.offset_fitted_on = moved
    output = Path(training_args.output_dir)
    test_metrics: dict[str, dict[str, float]] = {}
    summary: dict = {}
    if trainer.is_world_process_zero():
        detector_model = timm_model_of(trainer.model)
        tests = {config: load_split(data_args.dataset_name, config, split_name("test", data_args.split_protocol))
                 for config in test_config_names(data_args)}  # fmt: skip
        scored = predict_splits(detector_model, tests, pretrained_cfg, frames_per_video=data_args.test_frames_per_video,
                                batch_size=training_args.per_device_eval_batch_size, device=training_args.device,
                                decoder=data_args.decoder, progress=not training_args.disable_tqdm,
                                frame_cache=cache, autocast_dtype=autocast_dtype(training_args))  # fmt: skip
        for config, predictions in scored.items():
            test_metrics[config] = predictions.metrics()
            logger.info("test %s: %s", config, ", ".join(f"{k} {v:.4f}" for k, v in test_metrics[config].items()))
            if calibration is not None:
                ece = calibration.measure(config, predictions.fake_probability, predictions.labels)
                logger.info("test %s: ECE %s", config, ", ".join(f"{k} {v:.4f}" for k, v in ece.items()))
        save_detector(detector_model, info, output)
        record_temperature(output, calibration)
        if moved is not None:  # already in the weights: a record of how far the decision was moved, for readers
            record_in_config(output, {"decision_offset": moved[0]})
        # the crop its training clips were cut with, and its own input transform: the Space and evaluation of
        # whole-frame videos cut faces exactly so (dataset_script.faces.crop_clip)
        transform = input_transform(pretrained_cfg)
        record_in_config(output, {"face_crop": face_crop.as_dict() if face_crop else None,
                                  "input_transform": transform})  # fmt: skip
        training_data = describe_training_data(data_args.dataset_name, [*train["source_id"], *train["driving_id"]])
        logger.info("training data: %s (%s)", training_data.kind, training_data.evidence)
        recipe = {key: getattr(training_args, key) for key in RECIPE_KEYS}
        recipe.update(frames_per_video=data_args.frames_per_video, loss=model_args.loss,
                      paper_input_size=PAPER_MODELS.get(info.name, "n/a"), preset=run_args.preset,
                      precision=precision, upload_augmentation=describe_augmentation(data_args.augment))  # fmt: skip
        card = ModelCard(
            model_id=push_to or output.name, architecture=info.name, input_size=info.input_size,
            crop_pct=info.crop_pct, init=info.init,
            dataset=data_args.dataset_name, data_config=data_args.dataset_config_name,
            split_protocol=data_args.split_protocol, recipe=recipe, train_counts=counts,
            subset={k: v for k, v in asdict(subset).items() if v is not None}, test_metrics=test_metrics,
            versions=package_versions(), training_data=training_data, calibration=calibration,
            test_frames_per_video=data_args.test_frames_per_video, face_crop=face_crop, input_transform=transform,
        )  # fmt: skip
        write_text_atomically(output / "README.md", card.render())
        summary = {"train": train_result.metrics, "test": test_metrics, "model": info.name, "init": info.init,
                   "data": asdict(data_args), "train_counts": counts, "training_data": asdict(training_data),
                   "calibration": calibration.to_dict() if calibration else None}  # fmt: skip
        write_text_atomically(output / "results.json", json.dumps(summary, indent=2, default=str))
        if push_to:
            logger.info("pushed to %s: %s", push_to, push(output, push_to, training_args.hub_token,
                                                            training_args.hub_private_repo))  # fmt: skip
        logger.info("saved the detector and its model card in %s", output)
    trainer.accelerator.wait_for_everyone()
    return summary


def main(argv: list[str] | None = None) -> dict:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    configure_logging()
    transformers.utils.logging.set_verbosity_warning()
    return train(*arguments)


if __name__ == "__main__":
    main()
