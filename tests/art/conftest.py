import pytest
import torch

from bot.art.models import ModelChoice, ModelStore


@pytest.fixture(scope="session")
def clip_store() -> ModelStore:
    """CPU, easel-tiny CLIP with random weights (no downloads)."""
    return ModelStore(ModelChoice(clip_model="easel-tiny", clip_pretrained="none"), torch.device("cpu"))


@pytest.fixture(scope="session")
def vgg_store() -> ModelStore:
    """CPU, VGG16 features with the fixed-seed random weights (VGG_WEIGHTS=none)."""
    return ModelStore(ModelChoice(vgg_weights="none"), torch.device("cpu"))
