import json

import open_clip
import pytest
import torch
from safetensors.torch import save_file

from bot.art.models import (
    MODEL_CONFIGS_DIR,
    ModelChoice,
    ModelStore,
    choose_device,
    clip_config_name,
    clip_tokenizer,
    weights_status,
)
from bot.art.technique import MissingWeightsError

CPU = torch.device("cpu")


def test_easel_tiny_loads_with_random_weights(clip_store):
    clip = clip_store.clip()
    assert clip.random_weights and clip.image_size == 64
    assert clip_store.clip() is clip  # loaded once
    assert not any(weight.requires_grad for weight in clip.model.parameters())
    embeds = clip.model.encode_text(clip.tokenizer(["a cat"]))
    assert embeds.shape == (1, 64)
    assert "CLIP easel-tiny (random weights)" in clip_store.describe()


def test_clip_weights_round_trip_through_a_safetensors_file(clip_store, tmp_path):
    state_dict = {key: value.contiguous() for key, value in clip_store.clip().model.state_dict().items()}
    weights_file = tmp_path / "tiny.safetensors"
    save_file(state_dict, str(weights_file))
    loaded = ModelStore(ModelChoice(clip_pretrained=str(weights_file)), CPU).clip()
    assert not loaded.random_weights
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, state_dict[key]), key


def test_missing_hub_tag_says_how_to_get_it(tmp_path):
    choice = ModelChoice(clip_model="ViT-B-32", clip_pretrained="laion2b_s34b_b79k", weights_dir=tmp_path)
    with pytest.raises(MissingWeightsError, match="CLIP_PRETRAINED=laion2b_s34b_b79k") as error:
        ModelStore(choice, CPU).clip()
    assert "python -m bot weights download" in str(error.value)


def test_unknown_clip_file_is_missing(tmp_path):
    with pytest.raises(MissingWeightsError, match="CLIP_PRETRAINED"):
        ModelStore(ModelChoice(clip_pretrained=str(tmp_path / "nope.safetensors")), CPU).clip()


def test_vgg_random_weights_are_reproducible_and_round_trip(vgg_store, tmp_path):
    vgg = vgg_store.vgg_features()
    assert vgg.random_weights
    assert vgg.layers["relu1_2"] == 3 and vgg.layers["relu5_3"] == 29
    again = ModelStore(ModelChoice(vgg_weights="none"), CPU).vgg_features()
    assert torch.equal(vgg.features[0].weight, again.features[0].weight)

    weights_file = tmp_path / "vgg.safetensors"
    full_vgg16_keys = {f"features.{key}": value for key, value in vgg.features.state_dict().items()}
    save_file(full_vgg16_keys, str(weights_file))
    loaded = ModelStore(ModelChoice(vgg_weights=str(weights_file)), CPU).vgg_features()
    assert not loaded.random_weights
    assert torch.equal(loaded.features[28].weight, vgg.features[28].weight)


def test_vgg_torchvision_missing_says_how_to_get_it(tmp_path):
    with pytest.raises(MissingWeightsError, match="weights download"):
        ModelStore(ModelChoice(vgg_weights="torchvision", weights_dir=tmp_path), CPU).vgg_features()


def test_weights_status_reports_present_and_missing(tmp_path):
    weights_file = tmp_path / "vgg.pth"
    torch.save({"0.weight": torch.zeros(1)}, weights_file)
    choice = ModelChoice(clip_model="ViT-B-32", clip_pretrained="laion2b_s34b_b79k",
                         vgg_weights=str(weights_file), weights_dir=tmp_path)
    clip_status, vgg_status = weights_status(choice)
    assert clip_status.techniques == ("imagine", "compare") and not clip_status.present
    assert vgg_status.techniques == ("style", "dream") and vgg_status.present
    assert vgg_status.path == weights_file and vgg_status.size_bytes == weights_file.stat().st_size
    random_status = weights_status(ModelChoice())
    assert all(status.present and status.random_weights for status in random_status)


def test_choose_device():
    assert choose_device("cpu") == CPU
    assert choose_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            choose_device("cuda:1")


def test_patch_embedding_matches_the_convolution_it_replaces(clip_store):
    from bot.art.models import PatchEmbedding

    patch_embedding = clip_store.clip().model.visual.conv1
    assert isinstance(patch_embedding, PatchEmbedding)
    pixels = torch.randn(2, 3, 64, 64)
    expected = torch.nn.functional.conv2d(pixels, patch_embedding.weight, patch_embedding.bias, stride=16)
    assert torch.allclose(patch_embedding(pixels), expected, atol=1e-5)


def test_a_downloaded_hub_tag_is_found_in_the_local_cache(tmp_path):
    """The Hugging Face cache layout `weights download` leaves behind (a tiny stand-in file)."""
    repo = tmp_path / "open_clip" / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    weights_file = repo / "snapshots" / "abc123" / "open_clip_model.safetensors"
    weights_file.parent.mkdir(parents=True)
    weights_file.write_bytes(b"stand-in")
    choice = ModelChoice(clip_model="ViT-B-32", clip_pretrained="laion2b_s34b_b79k", weights_dir=tmp_path)
    clip_status = weights_status(choice)[0]
    assert clip_status.present and clip_status.path == weights_file and clip_status.size_bytes == 8


def test_hub_tags_bring_their_quick_gelu_and_normalisation():
    """open_clip only sees the cached file, so the tag's QuickGELU must be forced explicitly."""
    import open_clip

    from bot.art.models import hub_tag_options

    openai = hub_tag_options("ViT-B-32", "openai")
    laion = hub_tag_options("ViT-B-32", "laion2b_s34b_b79k")
    assert openai["force_quick_gelu"] and not laion["force_quick_gelu"]
    assert openai["force_preprocess_cfg"]["mean"] == open_clip.OPENAI_DATASET_MEAN
    assert hub_tag_options("ViT-B-32", "none") == {"force_quick_gelu": False, "force_preprocess_cfg": {}}

    model = open_clip.create_model("ViT-B-32", load_weights=False, **openai)  # random, ~1 s
    assert any(isinstance(module, open_clip.transformer.QuickGELU) for module in model.modules())


def test_make_deterministic_sets_cudnn_flags_only_for_cuda(monkeypatch):
    from bot.art.models import make_deterministic

    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    make_deterministic(CPU)
    assert not torch.backends.cudnn.deterministic and torch.backends.cudnn.benchmark
    make_deterministic(torch.device("cuda"))  # only sets flags: works without a GPU
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark


def test_default_tokenizers_are_shared_not_built_again(tmp_path):
    """open_clip builds the default SimpleTokenizer on import; models that use it share that one."""
    for name in ("easel-tiny", "ViT-B-32"):
        tokenizer = clip_tokenizer(clip_config_name(name))
        assert tokenizer is open_clip.tokenize
        texts = ["A photo of a Cat!", "a lighthouse in a storm"]
        assert torch.equal(tokenizer(texts), open_clip.get_tokenizer(name)(texts))
    config = json.loads((MODEL_CONFIGS_DIR / "easel-tiny.json").read_text())
    config["text_cfg"]["context_length"] = 32
    (tmp_path / "short-text.json").write_text(json.dumps(config))
    tokenizer = clip_tokenizer(clip_config_name(str(tmp_path / "short-text.json")))
    assert tokenizer is not open_clip.tokenize and tokenizer(["a cat"]).shape == (1, 32)
