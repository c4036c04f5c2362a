"""The README.md model card written next to a trained detector's weights."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from dataset_script.card import CITATION

METRIC_NAMES = {
    "frame_accuracy": "frame accuracy",
    "frame_auc": "frame AUC",
    "video_accuracy": "video accuracy",
    "video_auc": "video AUC",
    "eer": "EER",
    "ap": "AP",
}


def _is_hub_id(name: str) -> bool:
    from pathlib import Path

    return name.count("/") == 1 and not Path(name).exists() and not name.startswith((".", "/"))


@dataclass
class ModelCard:
    model_id: str
    architecture: str
    input_size: int
    crop_pct: float
    init: str
    dataset: str
    data_config: str
    split_protocol: str
    recipe: dict
    train_counts: dict[str, int]
    subset: dict = field(default_factory=dict)
    test_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def header(self) -> dict:
        return {
            "library_name": "timm",
            "license": "mit",
            "pipeline_tag": "image-classification",
            "tags": ["deepfake-detection", "image-classification", "timm", "video-classification"],
            "datasets": [self.dataset if _is_hub_id(self.dataset) else "deepfake_mnist_plus"],
        }

    def render(self) -> str:
        init = {
            "imagenet": "ImageNet weights (from the local Hugging Face cache)",
            "random": "**random weights**: no ImageNet weights were in the local cache, so the backbone "
            "was trained from scratch and numbers are not comparable with ImageNet-initialised runs",
        }.get(self.init, self.init)
        lines = [
            "---",
            yaml.safe_dump(self.header(), sort_keys=False).strip(),
            "---",
            "",
            f"# {self.model_id}: a DeepFake MNIST+ detector ({self.architecture})",
            "",
            f"A `{self.architecture}` classifier of single face frames into `real` (0) and `fake` (1, a facial "
            f"animation). Input: {self.input_size}x{self.input_size}, "
            + (
                "the whole frame resized"
                if self.crop_pct == 1.0
                else f"a centre square {self.crop_pct:.0%} of the frame's side (crop_pct {self.crop_pct})"
            )
            + ", as its `pretrained_cfg` records. A video's score is the mean fake probability of its frames.",
            "",
            "## Use",
            "",
            "```python",
            "import modeling  # registers mesoinception4 with timm",
            "from transformers import AutoModelForImageClassification",
            f'model = AutoModelForImageClassification.from_pretrained("{self.model_id}")',
            '# or: timm.create_model("hf-hub:' + self.model_id + '", pretrained=True)  # after `import modeling`',
            "```",
            "",
            "## Training data",
            "",
            f"- dataset: `{self.dataset}`, configuration `{self.data_config}`, split protocol `{self.split_protocol}`",
            f"- training videos: {self.train_counts.get('real', 0)} real, {self.train_counts.get('fake', 0)} fake",
        ]
        if self.subset:
            lines.append("- subset: " + ", ".join(f"{key} = {value}" for key, value in self.subset.items()))
        lines += ["", "## Recipe", "", f"- initial weights: {init}"]
        lines += [f"- {key}: {getattr(value, 'value', value)}" for key, value in self.recipe.items()]
        lines += ["", "## Test metrics", ""]
        if self.test_metrics:
            names = [name for name in METRIC_NAMES if any(name in m for m in self.test_metrics.values())]
            lines.append("| test set | " + " | ".join(METRIC_NAMES[n] for n in names) + " |")
            lines.append("|---|" + "---|" * len(names))
            for config, metrics in self.test_metrics.items():
                lines.append(f"| {config} | " + " | ".join(f"{metrics[n]:.4f}" for n in names) + " |")
            lines += ["", "Frames: 32 evenly spaced per video (fewer where a clip is shorter); threshold 0.5."]
        else:
            lines.append("Not measured (the run skipped the test).")
        if self.versions:
            lines += ["", "## Software", ""] + [f"- {name} {version}" for name, version in self.versions.items()]
        lines += ["", "## Citation", "", "```bibtex", CITATION.strip(), "```", ""]
        return "\n".join(lines)
