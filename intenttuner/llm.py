"""Settings for an OpenAI-compatible LLM endpoint (OpenAI, vLLM, llama.cpp, Ollama, LM Studio...).

The API key is never a setting: `LLMSettings` stores only the *name* of the environment variable
that holds it, so saved workflows, logs and file metadata cannot leak it. Because a (shared)
workflow chooses both the endpoint and that name, a key is only ever sent where the machine's
owner allows: to the provider a well-known key belongs to (OPENAI_API_KEY → api.openai.com), or
to hosts listed in the ``INTENTTUNER_LLM_TRUSTED_HOSTS`` environment variable (``host`` or
``host:port``, comma-separated); and only variables named ``*_API_KEY`` are read at all.

Loopback endpoints (localhost, 127.0.0.1, ::1) are called *without* a key unless listed: local
servers such as Ollama or llama.cpp need none, and any local process can listen on a port a
workflow names. An endpoint anywhere else that is neither the key's provider nor listed is
refused while the key is set, with a message saying how to allow it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import asdict, dataclass
from urllib.parse import urlparse

from .errors import InputError, LLMError, MissingDependencyError

TRUSTED_HOSTS_ENV = "INTENTTUNER_LLM_TRUSTED_HOSTS"  # comma-separated host or host:port
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_NO_KEY = "no-key"  # the openai client insists on some api_key; with it no header is sent
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
        self._host_port()  # a bad port is reported now, not at the first request
        if not 0 < self.timeout_s <= 600:
            raise InputError(f"LLM timeout_s {self.timeout_s} must be between 0 and 600 seconds.")

    def api_key(self) -> str | None:
        """The key to send to this endpoint, or None to send no Authorization header at all.

        None when the variable is unset, or when the endpoint is a loopback host that
        ``INTENTTUNER_LLM_TRUSTED_HOSTS`` does not list. Raises LLMError when the key is set
        and the endpoint is some other host that is neither the key's provider nor listed.
        """
        key = os.environ.get(self.api_key_env, "")
        if not key:
            return None
        host, port = self._host_port()
        if host in PROVIDER_HOSTS.get(self.api_key_env, ()) or _listed(host, port):
            return key
        if is_loopback(host):
            return None
        raise LLMError(
            f"Not sending {self.api_key_env} to {host}: that host is not where this key "
            f"belongs. If you trust it, add it to the {TRUSTED_HOSTS_ENV} environment "
            "variable (comma-separated host or host:port) before starting ComfyUI; a workflow "
            "cannot do that for you, which is what keeps shared workflows from sending "
            "your keys elsewhere.")

    def has_key(self) -> bool:
        return bool(os.environ.get(self.api_key_env))

    def key_withheld(self) -> bool:
        """Is a key set that is not sent, because the endpoint is an unlisted loopback host?"""
        return self.has_key() and self.api_key() is None

    def trust_entry(self) -> str:
        """What to add to ``INTENTTUNER_LLM_TRUSTED_HOSTS`` to allow this endpoint."""
        host, port = self._host_port()
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{port}"

    def client(self):
        """An ``openai.OpenAI`` client for this endpoint (retries are ours, not the client's).
        Pass `request_headers` with every request: without a key they omit Authorization."""
        try:
            import openai
        except ImportError:
            raise MissingDependencyError("openai", "The LLM (intent parsing, caption refinement)") from None
        return openai.OpenAI(base_url=self.base_url, api_key=self.api_key() or _NO_KEY,
                             timeout=self.timeout_s, max_retries=0)

    def request_headers(self) -> dict:
        """Extra headers for each request: none when a key is sent, else an omitted
        Authorization, so the client's placeholder key never goes out."""
        if self.api_key() is not None:
            return {}
        import openai

        return {"Authorization": openai.Omit()}

    def _host_port(self) -> tuple[str, int]:
        url = urlparse(self.base_url)
        try:
            port = url.port
        except ValueError:
            raise InputError(f"LLM base_url '{self.base_url}' has an invalid port; use e.g. "
                             "http://127.0.0.1:8080/v1.") from None
        return (url.hostname or "").lower(), port or (443 if url.scheme == "https" else 80)

    def to_dict(self) -> dict:
        """JSON-safe form (no key: there is none to include)."""
        return asdict(self)


def is_loopback(host: str) -> bool:
    """Is ``host`` this machine (localhost, 127.0.0.0/8, ::1)?"""
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def trusted_hosts() -> list[tuple[str, int | None]]:
    """``INTENTTUNER_LLM_TRUSTED_HOSTS`` as (host, port or None for any port) pairs.

    Entries are ``host``, ``host:port``, ``[v6 address]:port`` or a bare v6 address."""
    entries = []
    for raw in os.environ.get(TRUSTED_HOSTS_ENV, "").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        host, port = entry, None
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            port = rest.removeprefix(":") or None
        elif entry.count(":") == 1:
            host, port = entry.split(":")
        if port is not None and not port.isdigit():
            raise InputError(f"{TRUSTED_HOSTS_ENV} entry '{raw.strip()}' has no valid port; "
                             "write host or host:port, e.g. 127.0.0.1:11434.")
        entries.append((host, int(port) if port is not None else None))
    return entries


def _listed(host: str, port: int) -> bool:
    return any(h == host and p in (None, port) for h, p in trusted_hosts())
