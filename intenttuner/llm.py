"""Settings for an OpenAI-compatible LLM endpoint (OpenAI, vLLM, llama.cpp, Ollama, LM Studio...).

The API key is never a setting: `LLMSettings` stores only the *name* of the environment variable
that holds it, so saved workflows, logs and file metadata cannot leak it. Because a (shared)
workflow chooses both the endpoint and that name, a key is only ever sent where the machine's
owner allows: to loopback servers, to the provider a well-known key belongs to
(OPENAI_API_KEY → api.openai.com), or to hosts listed in the ``INTENTTUNER_LLM_TRUSTED_HOSTS``
environment variable; and only variables named ``*_API_KEY`` are read at all.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from urllib.parse import urlparse

from .errors import InputError, LLMError, MissingDependencyError

TRUSTED_HOSTS_ENV = "INTENTTUNER_LLM_TRUSTED_HOSTS"  # comma-separated host names
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
# Where a well-known key may go without being listed in TRUSTED_HOSTS_ENV.
PROVIDER_HOSTS = {
    "OPENAI_API_KEY": ("api.openai.com",),
    "OPENROUTER_API_KEY": ("openrouter.ai",),
    "GROQ_API_KEY": ("api.groq.com",),
    "DEEPSEEK_API_KEY": ("api.deepseek.com",),
    "MISTRAL_API_KEY": ("api.mistral.ai",),
    "TOGETHER_API_KEY": ("api.together.xyz",),
    "GEMINI_API_KEY": ("generativelanguage.googleapis.com",),
}

_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*_API_KEY")
# Prefixes of real keys (OpenAI, Anthropic-style, Hugging Face, Groq, generic bearer tokens).
_KEY_LIKE = re.compile(r"^(sk-|sk_|hf_|gsk_|xai-|pk-|key-)|^[A-Za-z0-9_\-]{40,}$")


@dataclass(frozen=True)
class LLMSettings:
    base_url: str  # e.g. "https://api.openai.com/v1" or "http://127.0.0.1:8080/v1"
    model: str  # model name the endpoint serves, e.g. "gpt-4o-mini"
    api_key_env: str = "OPENAI_API_KEY"  # NAME of the environment variable holding the key
    timeout_s: float = 60.0  # per request; a slow endpoint fails with a clear error after this
    temperature: float = 0.0  # deterministic parsing

    def __post_init__(self) -> None:
        url = urlparse(self.base_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise InputError(
                f"LLM base_url '{self.base_url}' is not an http(s) URL. Use the endpoint's "
                "OpenAI-compatible root, e.g. https://api.openai.com/v1 or http://127.0.0.1:8080/v1."
            )
        if not self.model.strip():
            raise InputError("LLM model is empty: give the model name the endpoint serves.")
        if _KEY_LIKE.search(self.api_key_env) or not _ENV_NAME.fullmatch(self.api_key_env):
            raise InputError(
                f"LLM api_key_env '{self.api_key_env[:6]}...' must be the NAME of an environment "
                "variable ending in _API_KEY (e.g. OPENAI_API_KEY), not a key. Keys typed into "
                "widgets end up in every saved and shared workflow, and other variables "
                "(tokens, passwords) are never sent; set the variable before starting ComfyUI."
            )
        if not 0 < self.timeout_s <= 600:
            raise InputError(f"LLM timeout_s {self.timeout_s} must be between 0 and 600 seconds.")

    def api_key(self) -> str:
        """The key from the environment (local servers that need none get a placeholder).

        Raises LLMError when the key exists but the endpoint's host is not allowed to get it.
        """
        key = os.environ.get(self.api_key_env, "")
        if not key:
            return "not-needed"
        host = (urlparse(self.base_url).hostname or "").lower()
        trusted = {h.strip().lower() for h in os.environ.get(TRUSTED_HOSTS_ENV, "").split(",")}
        allowed = LOOPBACK | set(PROVIDER_HOSTS.get(self.api_key_env, ())) | (trusted - {""})
        if host not in allowed:
            raise LLMError(
                f"Not sending {self.api_key_env} to {host}: that host is not where this key "
                f"belongs. If you trust it, add it to the {TRUSTED_HOSTS_ENV} environment "
                "variable (comma-separated host names) before starting ComfyUI; a workflow "
                "cannot do that for you, which is what keeps shared workflows from sending "
                "your keys elsewhere.")
        return key

    def has_key(self) -> bool:
        return bool(os.environ.get(self.api_key_env))

    def client(self):
        """An ``openai.OpenAI`` client for this endpoint (retries are ours, not the client's)."""
        try:
            import openai
        except ImportError:
            raise MissingDependencyError("openai", "The LLM intent parser") from None
        return openai.OpenAI(base_url=self.base_url, api_key=self.api_key(),
                             timeout=self.timeout_s, max_retries=0)

    def to_dict(self) -> dict:
        """JSON-safe form (no key: there is none to include)."""
        return asdict(self)
