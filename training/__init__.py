"""Part of deepfake-mnist-plus; see the README."""
