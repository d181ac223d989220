"""Hydra configs, installed as the package ``asrforge.conf`` so the apps can find them from anywhere."""
