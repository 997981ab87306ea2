"""The GPU settings reach llama.cpp, and the CPU default is what it always was."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_worker.generator import LlamaGenerator
from llm_worker.model_files import ensure_bundled
from services.common.settings import LLMSettings, Settings

pytestmark = pytest.mark.integration

MODELS_DIR = Path(__file__).resolve().parents[2] / "data" / "models"


@pytest.fixture(scope="module")
def model_path() -> Path:
    return ensure_bundled("qwen2.5-0.5b", MODELS_DIR)


def test_the_default_is_the_cpu_path(model_path: Path) -> None:
    llm = Settings().llm
    assert (llm.n_gpu_layers, llm.main_gpu, llm.tensor_split, llm.flash_attn) == (0, 0, None, False)
    generator = LlamaGenerator(llm.model_copy(update={"n_ctx": 512}), model_path)
    params = generator._llama.model_params
    assert params.n_gpu_layers == 0
    assert not params.tensor_split
    assert generator.backend_info()["backend"] == "cpu"


def test_gpu_settings_are_passed_to_llama_cpp(model_path: Path) -> None:
    # Layers stay 0 (this build has no GPU); the rest must arrive in llama.cpp's own params.
    settings = LLMSettings(n_ctx=512, main_gpu=0, tensor_split=[0.75, 0.25], flash_attn=True)
    generator = LlamaGenerator(settings, model_path)
    model = generator._llama.model_params
    assert model.main_gpu == 0
    assert [round(model.tensor_split[i], 2) for i in range(2)] == [0.75, 0.25]
    assert generator._llama.context_params.flash_attn_type == 1  # enabled


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIKU_LLM__N_GPU_LAYERS", "-1")
    monkeypatch.setenv("ZHIKU_LLM__MAIN_GPU", "1")
    monkeypatch.setenv("ZHIKU_LLM__TENSOR_SPLIT", "[0.5, 0.5]")
    monkeypatch.setenv("ZHIKU_LLM__FLASH_ATTN", "true")
    llm = Settings().llm
    assert (llm.n_gpu_layers, llm.main_gpu, llm.tensor_split, llm.flash_attn) == (
        -1, 1, [0.5, 0.5], True,
    )  # fmt: skip
