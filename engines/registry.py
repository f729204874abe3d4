"""The model registry: engines/models.toml, environment overrides, and fetching weights."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import InputError, ModelUnavailable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_MODELS_TOML = Path(__file__).with_name("models.toml")
CACHE_DIR = Path(os.environ.get("ZSS_CACHE", Path.home() / ".cache" / "zsstudio"))
_SPEC_KEYS = {
    "repo",
    "revision",
    "subfolder",
    "filename",
    "allow_patterns",
    "url",
    "sha256",
    "license",
    "description",
}


def override_variable(engine: str, component: str) -> str:
    """The environment variable that overrides one component, e.g. ZSS_MODEL_LAYOUT_SD15."""
    return "ZSS_MODEL_" + re.sub(r"[^A-Z0-9]+", "_", f"{engine}_{component}".upper())


@dataclass(frozen=True)
class ComponentSpec:
    """Where one component's weights come from, as models.toml (or an override) says."""

    engine: str
    name: str
    repo: str | None = None
    revision: str = "main"
    subfolder: str | None = None
    filename: str | None = None
    allow_patterns: tuple[str, ...] | None = None
    url: str | None = None
    sha256: str | None = None
    local_path: str | None = None
    license: str = ""
    description: str = ""

    @property
    def key(self) -> str:
        return f"{self.engine}.{self.name}"

    @property
    def source(self) -> str:
        if self.local_path:
            return self.local_path
        if self.url:
            return self.url
        return f"{self.repo}@{self.revision}"

    def fix(self) -> str:
        var = override_variable(self.engine, self.name)
        return (
            f"Run `zsstudio download {self.engine}` on a machine with internet access, "
            f"or set {var}=/path/to/a/local/copy."
        )


@dataclass(frozen=True)
class ResolvedModel:
    """A component's weights on local disk, and the exact revision they are."""

    spec: ComponentSpec
    path: Path
    revision: str

    @property
    def folder(self) -> Path:
        """The folder to load from: the repo root joined with the component's subfolder."""
        return self.path / self.spec.subfolder if self.spec.subfolder else self.path

    def recipe_entry(self) -> dict:
        entry = {"source": self.spec.repo or self.spec.url or "local", "revision": self.revision}
        if self.spec.subfolder:
            entry["subfolder"] = self.spec.subfolder
        if self.spec.filename:
            entry["filename"] = self.spec.filename
        return entry


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def _parse_spec(engine: str, name: str, table: dict) -> ComponentSpec:
    unknown = set(table) - _SPEC_KEYS
    if unknown:
        raise InputError(f"models.toml [{engine}.{name}]: unknown keys {sorted(unknown)}.")
    if bool(table.get("repo")) == bool(table.get("url")):
        raise InputError(f"models.toml [{engine}.{name}] needs exactly one of `repo` or `url`.")
    patterns = table.get("allow_patterns")
    return ComponentSpec(
        engine=engine,
        name=name,
        repo=table.get("repo"),
        revision=table.get("revision", "main"),
        subfolder=table.get("subfolder"),
        filename=table.get("filename"),
        allow_patterns=tuple(patterns) if patterns else None,
        url=table.get("url"),
        sha256=table.get("sha256") or None,
        license=table.get("license", ""),
        description=table.get("description", ""),
    )


def _apply_override(spec: ComponentSpec, value: str) -> ComponentSpec:
    value = value.strip()
    if value.startswith(("/", ".", "~")) or Path(value).expanduser().exists():
        return replace(spec, local_path=value)
    repo, _, revision = value.partition("@")
    return replace(spec, repo=repo, revision=revision or "main", url=None, local_path=None)


@dataclass
class Registry:
    """Reads models.toml and turns component names into local paths."""

    specs: dict[str, dict[str, ComponentSpec]] = field(default_factory=dict)
    source_file: Path = DEFAULT_MODELS_TOML

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> Registry:
        path = Path(path or os.environ.get("ZSS_MODELS_TOML") or DEFAULT_MODELS_TOML)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise InputError(f"Models file {path} does not exist.") from err
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"Models file {path} cannot be read: {err}.") from err
        except tomllib.TOMLDecodeError as err:
            raise InputError(f"Models file {path} is not valid TOML: {err}.") from err
        specs: dict[str, dict[str, ComponentSpec]] = {}
        for engine, components in data.items():
            if not isinstance(components, dict):
                raise InputError(f"models.toml: [{engine}] must be a table of components.")
            specs[engine] = {}
            for name, table in components.items():
                if not isinstance(table, dict):
                    raise InputError(f"models.toml: [{engine}.{name}] must be a table.")
                specs[engine][name] = _parse_spec(engine, name, table)
        return cls(specs=specs, source_file=path)

    def engines(self) -> list[str]:
        return list(self.specs)

    def components(self, engine: str) -> list[ComponentSpec]:
        return [self.spec(engine, name) for name in self.specs.get(engine, {})]

    def spec(self, engine: str, name: str) -> ComponentSpec:
        try:
            spec = self.specs[engine][name]
        except KeyError as err:
            raise InputError(f"No model `{engine}.{name}` in {self.source_file}.") from err
        override = os.environ.get(override_variable(engine, name))
        return _apply_override(spec, override) if override else spec

    def resolve(self, engine: str, name: str, download: bool | None = None) -> ResolvedModel:
        """Local path of a component. Downloads when allowed (default: unless HF_HUB_OFFLINE)."""
        spec = self.spec(engine, name)
        if download is None:
            download = not _offline()
        if spec.local_path:
            path = Path(spec.local_path).expanduser()
            if not path.exists():
                raise ModelUnavailable(
                    spec.key,
                    spec.local_path,
                    f"Fix {override_variable(engine, name)} to point at an existing folder or file.",
                    "the path does not exist",
                )
            return ResolvedModel(spec, path, f"local:{path}")
        if spec.url:
            return self._resolve_url(spec, download)
        return self._resolve_hub(spec, download)

    def download(self, engine: str) -> list[ResolvedModel]:
        return [self.resolve(engine, spec.name, download=True) for spec in self.components(engine)]

    def _resolve_hub(self, spec: ComponentSpec, download: bool) -> ResolvedModel:
        from huggingface_hub import hf_hub_download, snapshot_download

        def fetch(local_only: bool) -> Path:
            if spec.filename:
                name = f"{spec.subfolder}/{spec.filename}" if spec.subfolder else spec.filename
                return Path(
                    hf_hub_download(
                        spec.repo, name, revision=spec.revision, local_files_only=local_only
                    )
                )
            patterns = list(spec.allow_patterns) if spec.allow_patterns else None
            if spec.subfolder and not patterns:
                patterns = [f"{spec.subfolder}/*"]
            return Path(
                snapshot_download(
                    spec.repo,
                    revision=spec.revision,
                    allow_patterns=patterns,
                    local_files_only=local_only,
                )
            )

        try:
            path = fetch(local_only=True)
        except Exception as local_err:  # huggingface_hub raises several kinds here
            if not download:
                raise ModelUnavailable(
                    spec.key, spec.source, spec.fix(), "not downloaded; offline"
                ) from local_err
            try:
                path = fetch(local_only=False)
            except Exception as err:
                raise ModelUnavailable(
                    spec.key, spec.source, spec.fix(), f"download failed: {type(err).__name__}"
                ) from err
        return ResolvedModel(spec, path, _snapshot_revision(path, spec.revision))

    def _resolve_url(self, spec: ComponentSpec, download: bool) -> ResolvedModel:
        filename = spec.filename or spec.url.rsplit("/", 1)[-1]
        folder = CACHE_DIR / "url" / (spec.sha256 or hashlib.sha256(spec.url.encode()).hexdigest())
        target = folder / filename
        if target.exists():
            return ResolvedModel(spec, target, spec.sha256 or "unverified")
        if not download:
            raise ModelUnavailable(spec.key, spec.url, spec.fix(), "not downloaded; offline")
        try:
            _download_url(spec.url, target, spec.sha256)
        except Exception as err:
            raise ModelUnavailable(
                spec.key, spec.url, spec.fix(), f"download failed: {err}"
            ) from err
        return ResolvedModel(spec, target, spec.sha256 or "unverified")


def _snapshot_revision(path: Path, fallback: str) -> str:
    parts = path.parts
    if "snapshots" in parts:
        index = parts.index("snapshots")
        if index + 1 < len(parts):
            return parts[index + 1]
    return fallback


def _download_url(url: str, target: Path, sha256: str | None) -> None:
    import urllib.request

    from tqdm.auto import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
                    while chunk := response.read(1 << 20):
                        tmp.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
        except BaseException:
            os.unlink(tmp.name)
            raise
    if sha256 and digest.hexdigest() != sha256:
        os.unlink(tmp.name)
        raise ValueError(f"checksum mismatch: expected {sha256}, got {digest.hexdigest()}")
    shutil.move(tmp.name, target)
