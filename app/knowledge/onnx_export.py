"""The ONNX export of the embedding model's query path (run by ``app.knowledge.onnx_embedder``).

``export_onnx`` traces the model's transformer once into ``<data_dir>/onnx`` (or
``SUPPORTBOT_ONNX_DIR``) together with the tokenizer and the pooling settings; the export
records a fingerprint of the source files, so a changed model (or a changed export format) is
exported again rather than silently mixed with vectors from the old one. ``supportbot ingest``
calls ``ensure_onnx_export``.

This module must not import torch or sentence_transformers at module level: only
``export_onnx`` does, lazily.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import ConfigError
from app.knowledge.embedder import resolve_model_path

if TYPE_CHECKING:
    from app.config import Settings

log = logging.getLogger("supportbot")

# Bump when the exported files or their meaning change: old exports are then re-exported.
EXPORT_FORMAT = 1
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
SPEC_FILE = "embedder.json"
FINGERPRINT_FILE = "fingerprint.json"
# Pooling modes in the order sentence-transformers concatenates them, with their config flags.
_POOLING_FLAGS = {"cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens",
                  "mean": "pooling_mode_mean_tokens",
                  "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens"}
_SUPPORTED_MODULES = ("Transformer", "Pooling", "Normalize")


def onnx_dir(settings: Settings) -> Path:
    """Where the export for these settings lives (``SUPPORTBOT_ONNX_DIR``, else the data
    dir's ``onnx/``)."""
    return settings.onnx_dir or settings.data_dir / "onnx"


# ---- the source model ---------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _modules(model_dir: Path) -> list[dict[str, Any]]:
    path = model_dir / "modules.json"
    if not path.exists():  # a bare transformers directory: sentence-transformers' defaults
        return [{"type": "Transformer", "path": ""}, {"type": "Pooling", "path": ""}]
    modules: list[dict[str, Any]] = _read_json(path)
    return modules


def _kind(module: dict[str, Any]) -> str:
    """The module's class name (its import path moved between sentence-transformers versions)."""
    return str(module["type"]).rsplit(".", 1)[-1]


def _module_dir(model_dir: Path, modules: list[dict[str, Any]], kind: str) -> Path | None:
    for module in modules:
        if _kind(module) == kind:
            return model_dir / module.get("path", "")
    return None


def _spec(model_dir: Path) -> dict[str, Any]:
    """What the runtime needs besides the graph: sequence length, pooling, normalisation.

    Raises ConfigError for a pipeline this module cannot reproduce exactly (the caller then
    keeps the torch path)."""
    modules = _modules(model_dir)
    for module in modules:
        if _kind(module) not in _SUPPORTED_MODULES:
            raise ConfigError(f"cannot export {model_dir} to ONNX: module {module['type']} "
                              "is not supported (only Transformer, Pooling, Normalize)")
    transformer = _module_dir(model_dir, modules, "Transformer") or model_dir
    config = _read_json(transformer / "config.json")
    st_config_path = transformer / "sentence_bert_config.json"
    st_config = _read_json(st_config_path) if st_config_path.exists() else {}
    max_len = st_config.get("max_seq_length")
    if not max_len:
        tok_config = transformer / "tokenizer_config.json"
        max_len = _read_json(tok_config).get("model_max_length") if tok_config.exists() else None
    limit = int(config.get("max_position_embeddings") or 512)
    max_len = min(int(max_len or limit), limit)

    pooling_dir = _module_dir(model_dir, modules, "Pooling")
    pooling_config: dict[str, Any] = {}
    if pooling_dir is not None and (pooling_dir / "config.json").exists() \
            and pooling_dir != transformer:
        pooling_config = _read_json(pooling_dir / "config.json")
    if "pooling_mode" in pooling_config:  # newer configs: a mode or a list, in output order
        named = pooling_config["pooling_mode"]
        modes = [str(m).removesuffix("_tokens") for m in
                 ([named] if isinstance(named, str) else named)]
    else:
        modes = [m for m, flag in _POOLING_FLAGS.items() if pooling_config.get(flag)] or ["mean"]
    for flag in ("pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"):
        if pooling_config.get(flag):
            raise ConfigError(f"cannot export {model_dir} to ONNX: {flag} is not supported")
    unknown = [m for m in modes if m not in _POOLING_FLAGS]
    if unknown:
        raise ConfigError(f"cannot export {model_dir} to ONNX: pooling {unknown} not supported")
    if pooling_config.get("include_prompt") is False:
        raise ConfigError(f"cannot export {model_dir} to ONNX: include_prompt=False pooling")
    hidden = int(config.get("hidden_size") or pooling_config.get("word_embedding_dimension")
                 or pooling_config.get("embedding_dimension") or 0)
    return {
        "format": EXPORT_FORMAT,
        "name": model_dir.name,
        "max_seq_length": max_len,
        "do_lower_case": bool(st_config.get("do_lower_case", False)),
        "pooling": modes,
        "normalize": _module_dir(model_dir, modules, "Normalize") is not None,
        "dim": hidden * len(modes),
        "pad_token_id": int(config.get("pad_token_id") or 0),
    }


def _source_files(model_dir: Path) -> list[Path]:
    """The files whose content decides the vectors: weights, configs, tokenizer."""
    modules = _modules(model_dir)
    transformer = _module_dir(model_dir, modules, "Transformer") or model_dir
    pooling = _module_dir(model_dir, modules, "Pooling")
    weights = [p for p in (transformer / "model.safetensors", transformer / "pytorch_model.bin")
               if p.exists()][:1]
    if not weights:
        raise ConfigError(f"no model.safetensors or pytorch_model.bin in {transformer}")
    names = ["config.json", "sentence_bert_config.json", "tokenizer.json",
             "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"]
    files = [*weights, *(transformer / n for n in names), model_dir / "modules.json"]
    if pooling is not None:
        files.append(pooling / "config.json")
    return sorted({p for p in files if p.exists()})


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def source_fingerprint(model_dir: Path, known: dict[str, Any] | None = None) -> dict[str, Any]:
    """A fingerprint of the model's weights and configs.

    ``known`` is a fingerprint recorded earlier: a file whose path, size and mtime are
    unchanged keeps its recorded hash, so checking an up-to-date export at start-up does not
    rehash the ~90 MB of weights (a rewritten file has a new mtime and is hashed again)."""
    known_files: dict[str, Any] = (known or {}).get("files", {})
    files: dict[str, Any] = {}
    for path in _source_files(model_dir):
        stat = path.stat()
        rel = path.relative_to(model_dir).as_posix()
        entry = {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        old = known_files.get(rel)
        if old and all(old.get(k) == v for k, v in entry.items()):
            entry["sha256"] = old["sha256"]
        else:
            entry["sha256"] = _sha256(path)
        files[rel] = entry
    combined = hashlib.sha256(json.dumps(
        {"format": EXPORT_FORMAT, "files": {k: v["sha256"] for k, v in files.items()}},
        sort_keys=True).encode()).hexdigest()
    return {"format": EXPORT_FORMAT, "sha256": combined, "files": files}


def _recorded_fingerprint(out_dir: Path) -> dict[str, Any] | None:
    try:
        recorded: dict[str, Any] = _read_json(out_dir / FINGERPRINT_FILE)
    except (OSError, ValueError):
        return None
    return recorded


def export_is_current(model_dir: Path, out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a complete export of exactly these weights and configs."""
    recorded = _recorded_fingerprint(out_dir)
    if recorded is None or recorded.get("format") != EXPORT_FORMAT:
        return False
    if not all((out_dir / n).exists() for n in (MODEL_FILE, TOKENIZER_FILE, SPEC_FILE)):
        return False
    try:
        current = source_fingerprint(model_dir, recorded)
    except (OSError, ConfigError):
        return False
    return bool(current["sha256"] == recorded.get("sha256"))


# ---- export -------------------------------------------------------------------------------


def export_onnx(model_dir: Path, out_dir: Path) -> Path:
    """Export the model's transformer to ``out_dir/model.onnx`` (dynamic batch and sequence).

    Writes the graph, ``tokenizer.json``, the pooling spec and the source fingerprint into a
    temporary sibling directory and renames it into place, so a reader never sees a partial
    export. Needs torch, transformers and the ``onnx`` package (the TorchScript exporter
    serialises through it). Returns ``out_dir``.
    """
    spec = _spec(model_dir)
    fingerprint = source_fingerprint(model_dir)
    transformer = _module_dir(model_dir, _modules(model_dir), "Transformer") or model_dir
    if not (transformer / TOKENIZER_FILE).exists():
        raise ConfigError(f"cannot export {model_dir} to ONNX: no fast tokenizer "
                          f"({TOKENIZER_FILE})")
    if importlib.util.find_spec("onnx") is None:  # torch's exporter serialises through it
        raise ConfigError("exporting the embedding model to ONNX needs the 'onnx' package "
                          "(pip install onnx); until then queries use the torch embedder")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    # Eager attention traces to plain MatMul/Softmax with the padding mask as data, so one
    # graph serves every batch and sequence length (the SDPA path bakes in tracing-time
    # shape decisions).
    model = AutoModel.from_pretrained(str(transformer), local_files_only=True,
                                      attn_implementation="eager")
    model.eval()
    accepts_types = "token_type_ids" in model.forward.__code__.co_varnames \
        and int(getattr(model.config, "type_vocab_size", 0) or 0) > 0
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if accepts_types else [])

    class _Hidden(torch.nn.Module):
        """Keyword call and a single tensor out (positional arguments differ by version)."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: Any) -> Any:
            return self.inner(**dict(zip(names, inputs, strict=True)),
                              return_dict=True).last_hidden_state

    # Example inputs with padding, so the traced graph is the general (masked) one.
    ids = torch.tensor([[101, 2054, 2003, 102], [101, 7592, 102, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    example = (ids, mask, torch.zeros_like(ids))[: len(names)]
    spec["inputs"] = names

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer warns about shape checks it freezes; with a mask always given and
            # lengths taken from it, none of them depends on the example's shape (the tests
            # compare against the torch path across batch sizes and lengths).
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Hidden(model), example, str(tmp / MODEL_FILE), input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "sequence"}
                              for n in [*names, "last_hidden_state"]},
                opset_version=17, do_constant_folding=True, dynamo=False)
        shutil.copyfile(transformer / TOKENIZER_FILE, tmp / TOKENIZER_FILE)
        (tmp / SPEC_FILE).write_text(json.dumps(spec, indent=2), encoding="utf-8")
        (tmp / FINGERPRINT_FILE).write_text(json.dumps(fingerprint, indent=2), encoding="utf-8")
        _replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; an old ``target`` is renamed away first and then removed
    (directories cannot be swapped atomically, but a reader sees either a whole export or none,
    and a missing one only means the torch path for that start)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}-old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    new.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


_EXPORT_LOCK = threading.Lock()


def ensure_onnx_export(settings: Settings) -> Path:
    """The export directory for the configured model, exported first if missing or stale.

    Serialised across threads and processes (a lock file beside the export), so two
    ingests starting together export once."""
    model_dir = resolve_model_path(settings.embedding_model)
    out_dir = onnx_dir(settings)
    if export_is_current(model_dir, out_dir):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with _EXPORT_LOCK, open(out_dir.parent / "onnx.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if not export_is_current(model_dir, out_dir):  # another process may have won
                export_onnx(model_dir, out_dir)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return out_dir
