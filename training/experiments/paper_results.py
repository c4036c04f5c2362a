"""The paper's own numbers, as data: frame accuracy in % on the test split (Huang et al. 2021, section 5).

Keys use our names: timm model names and the qualities ``raw``/``c23``/``c40`` (the paper's "light" and "heavy"
compression). Figures 3, 4, 5 and 6 are bar charts; only the values the text states are here.
"""

from __future__ import annotations

MODEL_NAMES = {
    "resnet50": "Resnet50",
    "resnet101": "Resnet101",
    "resnet152": "Resnet152",
    "legacy_xception": "XceptionNet",
    "mesoinception4": "MesoNet",
}
"""Our timm name of each paper model, and the paper's name for it."""

TABLE2 = {
    "DeepFake MNIST+": {"own test set": 96.58, "fine-tuning": 95.3},
    "Deepfakes": {"own test set": 99.7, "on DeepFake MNIST+": 43.7, "fine-tuning": 98.46},
    "NeuralTextures": {"own test set": 99.2, "on DeepFake MNIST+": 63.6, "fine-tuning": 98.1},
    "Face2Face": {"own test set": 98.9, "on DeepFake MNIST+": 67.5, "fine-tuning": 98.49},
}
"""Table 2: ResNet50 trained on FaceForensics++ manipulations (raw) and tested on DeepFake MNIST+, and the DM+
detector fine-tuned with each. The paper's columns are "original accuracy", "accuracy on DM+" and "fine-tuning";
it does not say on which test set the fine-tuned detectors were scored (its text: they "detect both animation
data and other Deepfake data")."""

TABLE3 = {
    "resnet50": {"raw": 96.58, "c23": 94.32, "c40": 91.49},
    "resnet101": {"raw": 96.64, "c23": 94.87, "c40": 90.44},
    "resnet152": {"raw": 96.18, "c23": 94.90, "c40": 91.27},
    "legacy_xception": {"raw": 92.38, "c23": 85.52, "c40": 83.143},
    "mesoinception4": {"raw": 60.39, "c23": 58.58, "c40": 57.90},
}
"""Table 3: trained and tested on one quality."""

TABLE4 = {
    "resnet50": {"raw->c23": 85.52, "raw->c40": 71.3, "c23->raw": 95.16, "c23->c40": 82.98, "c40->raw": 59.0,
                 "c40->c23": 61.02},
    "resnet152": {"raw->c23": 79.23, "raw->c40": 68.12, "c23->raw": 82.33, "c23->c40": 73.60, "c40->raw": 76.72,
                  "c40->c23": 76.69},
    "legacy_xception": {"raw->c23": 79.17, "raw->c40": 71.83, "c23->raw": 87.89, "c23->c40": 68.99,
                        "c40->raw": 67.38, "c40->c23": 62.9},
    "mesoinception4": {"raw->c23": 51.37, "raw->c40": 56.92, "c23->raw": 57.01, "c23->c40": 49.53,
                       "c40->raw": 55.65, "c40->c23": 58.64},
}  # fmt: skip
"""Table 4: trained on one quality (left of the arrow), tested on another."""

TABLE5 = {
    "resnet50": {"raw": 93.57, "c23": 90.69, "c40": 85.56},
    "resnet152": {"raw": 95.78, "c23": 92.11, "c40": 88.32},
    "legacy_xception": {"raw": 90.82, "c23": 83.28, "c40": 82.43},
    "mesoinception4": {"raw": 59.47, "c23": 56.94, "c40": 55.38},
}
"""Table 5: trained on mixed quality (a random quality per sample), tested per quality."""

FIGURE5 = {
    "model": "resnet50",
    "all actions (1,000 fakes)": 93.4,
    "mean over single actions": 74.3,
    "nod": 80.46,
    "surprise": 79.98,
    "right_slope": 77.02,
    "left_slope": 75.89,
    "blink": 69.08,
    "smile": 67.36,
}
"""Figure 5 (stated in the text): ResNet50 trained on one action's fakes and 1,000 reals, raw, whole test set."""

FIGURE6 = {
    "left_slope": {"raw": 92.3, "c40": 88.24},
    "embarrassment": {"c40": 87.5},
    "smile": {"raw": 100.0},
    "blink": {"raw": 100.0},
}
"""Figure 6 (stated in the text): per-action accuracy of models trained on the whole training set. The text adds
that embarrassment loses about 7 points from raw to c40 and smile and blink fall to about 97 at c40."""

FINDINGS = [
    "raw > c23 > c40 for every model (Table 3)",
    "a model trained on one quality loses accuracy on the others, most between raw and c40 (Table 4)",
    "mixed-quality training adapts to all three qualities, a little below single-quality training (Table 5)",
    "more training data helps; 10 fakes is near chance (Figure 3)",
    "fewer fakes hurts more than fewer reals (Figure 4)",
    "training on one action generalises worse than on all; large movements generalise best (Figure 5)",
]
