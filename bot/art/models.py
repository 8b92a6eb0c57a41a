"""The networks techniques share (CLIP, VGG16), loaded once per worker from local files only.

Weights never download at load time: a missing file raises `MissingWeightsError` saying which
setting to change or which command fetches it (`python -m bot weights download`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
from open_clip.tokenizer import DEFAULT_CONTEXT_LENGTH
from torch import nn
from torchvision.models import VGG16_Weights
from torchvision.models.vgg import cfgs as vgg_cfgs
from torchvision.models.vgg import make_layers

from bot.art.technique import MissingWeightsError

MODEL_CONFIGS_DIR = Path(__file__).parent / "model_configs"  # easel-tiny.json and any configs we ship
WEIGHT_FILE_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
DOWNLOAD_COMMAND = "python -m bot weights download"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG_RANDOM_SEED = 0  # VGG_WEIGHTS=none builds the same random network every time


@dataclass(frozen=True)
class ModelChoice:
    """Which networks to load (the CLIP_MODEL, CLIP_PRETRAINED and VGG_WEIGHTS settings)."""

    clip_model: str = "easel-tiny"
    clip_pretrained: str = "none"
    vgg_weights: str = "none"
    weights_dir: Path = Path("data/weights")

    @classmethod
    def from_settings(cls, settings) -> ModelChoice:
        return cls(
            clip_model=settings.clip_model,
            clip_pretrained=settings.clip_pretrained,
            vgg_weights=settings.vgg_weights,
            weights_dir=Path(settings.data_dir) / "weights",
        )

    @property
    def clip_cache_dir(self) -> Path:
        """Where `weights download` puts open_clip hub weights (a Hugging Face cache layout)."""
        return self.weights_dir / "open_clip"

    @property
    def vgg_cache_file(self) -> Path:
        """Where `weights download` puts torchvision's VGG16 IMAGENET1K_V1 file."""
        return self.weights_dir / "torchvision" / Path(VGG16_Weights.IMAGENET1K_V1.url).name


def choose_device(name: str) -> torch.device:
    """"auto" picks cuda, then mps, then cpu; "cpu", "mps", "cuda" and "cuda:N" are taken as asked."""
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"DEVICE={name} but CUDA is not available here; use DEVICE=auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"DEVICE={name} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"DEVICE={name} but MPS is not available on this machine; use DEVICE=auto or cpu")
    return device


def make_deterministic(device: torch.device) -> None:
    """Pick deterministic cuDNN kernels on CUDA (no benchmark autotuning, which may choose differently per run).

    Same-seed results on CUDA are then close but still not guaranteed bit-identical: grid_sample's
    backward (the cutouts in imagine) accumulates with atomic adds, whose order varies. CPU and MPS
    need nothing here.
    """
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


@dataclass
class ClipModel:
    model: nn.Module  # open_clip CLIP: encode_image, encode_text
    tokenizer: object  # texts -> [n, context_length] token ids
    image_size: int  # side of the square images encode_image expects
    mean: torch.Tensor  # [1, 3, 1, 1] on the device
    std: torch.Tensor  # [1, 3, 1, 1] on the device
    random_weights: bool
    name: str  # e.g. "ViT-B-32 (laion2b_s34b_b79k)"


@dataclass
class VggFeatures:
    features: nn.Sequential  # torchvision vgg16().features: conv, relu and max-pool layers
    mean: torch.Tensor  # [1, 3, 1, 1] ImageNet mean on the device
    std: torch.Tensor  # [1, 3, 1, 1]
    random_weights: bool
    layers: dict[str, int]  # "relu1_1" -> index in `features`, ... "relu5_3"


@dataclass(frozen=True)
class WeightsStatus:
    techniques: tuple[str, ...]  # the techniques that need these weights
    setting: str  # "CLIP_PRETRAINED" or "VGG_WEIGHTS"
    value: str
    present: bool  # True when the technique can run (random weights count as present)
    path: Path | None
    size_bytes: int

    @property
    def random_weights(self) -> bool:
        return self.value.lower() == "none"


# --- CLIP ---------------------------------------------------------------------------------------


def clip_config_name(clip_model: str) -> str:
    """The open_clip config name for CLIP_MODEL, registering our shipped or a given JSON config first."""
    if clip_model.endswith(".json"):
        config_path = Path(clip_model)
        if not config_path.is_file():
            raise FileNotFoundError(f"CLIP_MODEL={clip_model}: no such config file")
        name = config_path.stem
    else:
        config_path, name = MODEL_CONFIGS_DIR, clip_model
    if name not in open_clip.list_models():
        open_clip.add_model_config(config_path)
    if name not in open_clip.list_models():
        raise ValueError(f"CLIP_MODEL={clip_model} is not an open_clip model config; for example ViT-B-32")
    return name


def is_weights_file(value: str) -> bool:
    return value.lower().endswith(WEIGHT_FILE_SUFFIXES) or "/" in value or os.sep in value


def find_cached_clip_weights(model_name: str, tag: str, cache_dir: Path) -> Path | None:
    """The local file for an open_clip pretrained tag, as `open_clip.download_pretrained` stores it."""
    pretrained_cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if not pretrained_cfg:
        return None
    if pretrained_cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo_id, filename = os.path.split(pretrained_cfg["hf_hub"])
        filename = filename or HF_WEIGHTS_NAME
        candidates = [filename]  # open_clip prefers a .safetensors twin when the repo has one
        if filename == HF_WEIGHTS_NAME:
            candidates.insert(0, HF_SAFE_WEIGHTS_NAME)
        elif filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename[:-4] + ".safetensors")
        for candidate in candidates:
            cached = try_to_load_from_cache(repo_id, candidate, cache_dir=cache_dir)
            if isinstance(cached, str) and os.path.isfile(cached):
                return Path(cached)
        return None
    url_file = cache_dir / os.path.basename(pretrained_cfg.get("url", ""))
    return url_file if url_file.is_file() else None


def resolve_clip_weights(choice: ModelChoice) -> Path | None:
    """The weights file CLIP_PRETRAINED points at; None for random weights; MissingWeightsError if absent."""
    value = choice.clip_pretrained
    if value.lower() == "none":
        return None
    if is_weights_file(value):
        if not Path(value).is_file():
            raise MissingWeightsError(
                f"CLIP_PRETRAINED={value}: no such file. Import one with "
                "`python -m bot weights import PATH`, or set CLIP_PRETRAINED=none for random weights."
            )
        return Path(value)
    model_name = clip_config_name(choice.clip_model)
    if not open_clip.get_pretrained_cfg(model_name, value):
        known = ", ".join(open_clip.list_pretrained_tags_by_model(model_name)) or "none"
        raise MissingWeightsError(
            f"CLIP_PRETRAINED={value} is not a weights file or an open_clip tag for "
            f"CLIP_MODEL={choice.clip_model} (known tags: {known})."
        )
    cached = find_cached_clip_weights(model_name, value, choice.clip_cache_dir)
    if cached is None:
        raise MissingWeightsError(
            f"CLIP weights CLIP_PRETRAINED={value} for {choice.clip_model} are not in "
            f"{choice.clip_cache_dir}. "
            f"Run `{DOWNLOAD_COMMAND}`, or set CLIP_PRETRAINED=none for random weights."
        )
    return cached


class PatchEmbedding(nn.Conv2d):
    """A Conv2d whose kernel equals its stride (a ViT's patch embedding), computed as one matmul.

    Same weights and state-dict keys as the Conv2d it replaces. On CPU, oneDNN's backward pass for
    this convolution (which imagine needs for the image's gradient) is several times slower than
    the equivalent matmul; on GPUs the two are alike.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, H, W]
        batch, channels, height, width = x.shape
        patch_h, patch_w = self.kernel_size
        rows, cols = height // patch_h, width // patch_w
        patches = x[..., : rows * patch_h, : cols * patch_w]
        patches = patches.reshape(batch, channels, rows, patch_h, cols, patch_w)
        patches = patches.permute(0, 2, 4, 1, 3, 5).reshape(batch, rows * cols, -1)  # [B, N, C*ph*pw]
        embeds = F.linear(patches, self.weight.reshape(self.out_channels, -1), self.bias)  # [B, N, D]
        return embeds.transpose(1, 2).reshape(batch, self.out_channels, rows, cols)  # [B, D, rows, cols]


def use_patch_embedding_matmul(visual: nn.Module) -> None:
    """Swap a ViT's stride=kernel `conv1` for the equivalent `PatchEmbedding` (other towers: no change)."""
    conv = getattr(visual, "conv1", None)
    is_patch_conv = (
        type(conv) is nn.Conv2d and conv.kernel_size == conv.stride and conv.padding == (0, 0)
        and conv.dilation == (1, 1) and conv.groups == 1
    )
    if is_patch_conv:
        patch_embedding = PatchEmbedding(conv.in_channels, conv.out_channels, conv.kernel_size,
                                         stride=conv.stride, bias=conv.bias is not None,
                                         device=conv.weight.device, dtype=conv.weight.dtype)
        patch_embedding.load_state_dict(conv.state_dict())
        visual.conv1 = patch_embedding.requires_grad_(False)


def hub_tag_options(model_name: str, clip_pretrained: str) -> dict[str, Any]:
    """`open_clip.create_model` settings that a hub tag carries: QuickGELU and the image mean and std.

    open_clip applies them itself only when handed the tag; we hand it the cached file instead, so
    they are passed explicitly. Without them every `openai` (and yfcc15m, cc12m...) model would run
    with nn.GELU. No settings for "none" or a weights file.
    """
    tag_cfg = open_clip.get_pretrained_cfg(model_name, clip_pretrained)  # {} for "none", files, unknown tags
    return {
        "force_quick_gelu": bool(tag_cfg.get("quick_gelu")),
        "force_preprocess_cfg": {key: tag_cfg[key] for key in ("mean", "std") if key in tag_cfg},
    }


def clip_tokenizer(model_name: str):
    """`open_clip.get_tokenizer(model_name)`, without building a second SimpleTokenizer where it would.

    Importing open_clip already builds the default SimpleTokenizer (context length 77) behind
    `open_clip.tokenize`; get_tokenizer builds another, reading its 49k-merge vocabulary again
    (0.1-0.2 s). Models whose text config asks for nothing else share the first.
    """
    text_cfg = (open_clip.get_model_config(model_name) or {}).get("text_cfg", {})
    is_default = (
        text_cfg.get("context_length", DEFAULT_CONTEXT_LENGTH) == DEFAULT_CONTEXT_LENGTH
        and not text_cfg.get("hf_tokenizer_name") and not text_cfg.get("tokenizer_kwargs")
        and "siglip" not in model_name.lower()
    )
    return open_clip.tokenize if is_default else open_clip.get_tokenizer(model_name)


def load_clip(choice: ModelChoice, device: torch.device) -> ClipModel:
    model_name = clip_config_name(choice.clip_model)
    weights_file = resolve_clip_weights(choice)
    clip_model = open_clip.create_model(
        model_name, pretrained=str(weights_file) if weights_file else None, device=device,
        **hub_tag_options(model_name, choice.clip_pretrained),
    )
    clip_model.eval().requires_grad_(False)
    use_patch_embedding_matmul(clip_model.visual)
    preprocess = open_clip.get_model_preprocess_cfg(clip_model)  # size, mean, std the model was trained with
    image_size = preprocess["size"] if isinstance(preprocess["size"], int) else preprocess["size"][0]
    source = "random weights" if weights_file is None else choice.clip_pretrained
    return ClipModel(
        model=clip_model,
        tokenizer=clip_tokenizer(model_name),
        image_size=image_size,
        mean=torch.tensor(preprocess["mean"], device=device).view(1, 3, 1, 1),
        std=torch.tensor(preprocess["std"], device=device).view(1, 3, 1, 1),
        random_weights=weights_file is None,
        name=f"{choice.clip_model} ({source})",
    )


# --- VGG16 --------------------------------------------------------------------------------------


def vgg_layer_names(features: nn.Sequential) -> dict[str, int]:
    """Caffe-style names for the ReLU outputs: "relu1_1" -> 1, "relu1_2" -> 3, ... "relu5_3" -> 29."""
    names, block, conv = {}, 1, 0
    for index, layer in enumerate(features):
        if isinstance(layer, nn.Conv2d):
            conv += 1
        elif isinstance(layer, nn.ReLU):
            names[f"relu{block}_{conv}"] = index
        elif isinstance(layer, nn.MaxPool2d):
            block, conv = block + 1, 0
    return names


def random_vgg16_features() -> nn.Sequential:
    """vgg16().features with torchvision's init and a fixed seed, skipping the 120M-weight classifier."""
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG alone
        torch.manual_seed(VGG_RANDOM_SEED)
        features = make_layers(vgg_cfgs["D"], batch_norm=False)
        for layer in features:
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(layer.bias)
    return features


def vgg_features_state_dict(weights_file: Path) -> dict[str, torch.Tensor]:
    """The `features` part of a VGG16 state dict, from a full vgg16() or a features-only file."""
    if weights_file.suffix == ".safetensors":
        from safetensors.torch import load_file

        state_dict = load_file(str(weights_file))
    else:
        state_dict = torch.load(weights_file, map_location="cpu", weights_only=True)
    if any(key.startswith("features.") for key in state_dict):
        state_dict = {key.removeprefix("features."): value for key, value in state_dict.items()
                      if key.startswith("features.")}
    return state_dict


def resolve_vgg_weights(choice: ModelChoice) -> Path | None:
    value = choice.vgg_weights
    if value.lower() == "none":
        return None
    if value.lower() == "torchvision":
        if not choice.vgg_cache_file.is_file():
            raise MissingWeightsError(
                f"VGG_WEIGHTS=torchvision but {choice.vgg_cache_file} is missing. Run `{DOWNLOAD_COMMAND}`, "
                "or set VGG_WEIGHTS=none for random weights."
            )
        return choice.vgg_cache_file
    if not Path(value).is_file():
        raise MissingWeightsError(
            f"VGG_WEIGHTS={value}: no such file. Import one with "
            "`python -m bot weights import PATH --kind vgg`, "
            f"or set VGG_WEIGHTS=torchvision and run `{DOWNLOAD_COMMAND}`."
        )
    return Path(value)


def load_vgg_features(choice: ModelChoice, device: torch.device) -> VggFeatures:
    weights_file = resolve_vgg_weights(choice)
    features = random_vgg16_features()
    if weights_file is not None:
        features.load_state_dict(vgg_features_state_dict(weights_file))
    features.to(device).eval().requires_grad_(False)
    return VggFeatures(
        features=features,
        mean=torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1),
        std=torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1),
        random_weights=weights_file is None,
        layers=vgg_layer_names(features),
    )


# --- the store ----------------------------------------------------------------------------------


class ModelStore:
    """One per worker: loads each network on first use and keeps it (eval mode, frozen weights)."""

    def __init__(self, choice: ModelChoice, device: torch.device):
        self.choice = choice
        self.device = device
        self._clip: ClipModel | None = None
        self._vgg: VggFeatures | None = None

    def clip(self) -> ClipModel:
        if self._clip is None:
            self._clip = load_clip(self.choice, self.device)
        return self._clip

    def vgg_features(self) -> VggFeatures:
        if self._vgg is None:
            self._vgg = load_vgg_features(self.choice, self.device)
        return self._vgg

    def describe(self) -> list[str]:
        """Human lines about the configured networks, e.g. "CLIP ViT-B-32 (laion2b_s34b_b79k)"."""
        clip_source = self.choice.clip_pretrained
        if clip_source.lower() == "none":
            clip_source = "random weights"
        vgg_source = {"none": "random weights", "torchvision": "torchvision ImageNet weights"}.get(
            self.choice.vgg_weights.lower(), self.choice.vgg_weights
        )
        loaded = [name for name, model in (("CLIP", self._clip), ("VGG16", self._vgg)) if model is not None]
        return [
            f"CLIP {self.choice.clip_model} ({clip_source})",
            f"VGG16 ({vgg_source})",
            f"device {self.device}; loaded: {', '.join(loaded) or 'nothing yet'}",
        ]


def _status(techniques: tuple[str, ...], setting: str, value: str, resolve) -> WeightsStatus:
    if value.lower() == "none":
        return WeightsStatus(techniques, setting, value, present=True, path=None, size_bytes=0)
    try:
        path = resolve()
    except (MissingWeightsError, ValueError, FileNotFoundError):
        return WeightsStatus(techniques, setting, value, present=False, path=None, size_bytes=0)
    return WeightsStatus(techniques, setting, value, present=True, path=path, size_bytes=path.stat().st_size)


def weights_status(choice: ModelChoice) -> list[WeightsStatus]:
    """For `weights list` and /about: which weights each technique needs and whether they are here."""
    return [
        _status(("imagine", "compare"), "CLIP_PRETRAINED", choice.clip_pretrained,
                lambda: resolve_clip_weights(choice)),
        _status(("style", "dream"), "VGG_WEIGHTS", choice.vgg_weights,
                lambda: resolve_vgg_weights(choice)),
    ]


def missing_weights(choice: ModelChoice, technique: str) -> str | None:
    """Why `technique` cannot run on this machine (its weights are missing, and how to get them), or None."""
    resolve = {"imagine": resolve_clip_weights, "compare": resolve_clip_weights, "style": resolve_vgg_weights,
               "dream": resolve_vgg_weights}
    if technique not in resolve:
        return None
    try:
        resolve[technique](choice)
    except MissingWeightsError as error:
        return str(error)
    return None
