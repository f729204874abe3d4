"""The model registry: engines/models.toml, environment overrides, and fetching weights."""

from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from .downloads import (
    download_failure,
    download_problem,
    download_url,
    downloaded_sha256,
    unreachable_reason,
)
from .errors import InputError, ModelsMissing, ModelUnavailable
from .hashing import remembered_file_sha256, tree_sha256
from .stages import download_bar, report

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_MODELS_TOML = Path(__file__).with_name("models.toml")
CACHE_DIR = Path(os.environ.get("ZSS_CACHE", Path.home() / ".cache" / "zsstudio"))
ALIASES = "aliases"
"""The top-level models.toml table of renamed Hub repos: old id = current id."""
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
    "optional",
}


FILE_HASHES = "file-hashes.json"
"""In CACHE_DIR: the SHA-256 of big weight files, by path, size and mtime."""


def remembered_sha256(path: str | os.PathLike) -> str:
    """A file's SHA-256, hashed once while it does not change (see FILE_HASHES)."""
    return remembered_file_sha256(path, CACHE_DIR / FILE_HASHES)


LOCAL_REVISION = "local:sha256:"
"""How a recipe records a local copy (an override naming a folder or file, which has no
revision of its own): by the SHA-256 of its contents (`hashing.tree_sha256`), never by its
path. Hashing a big copy takes a while once; its files' hashes are remembered after."""


def local_revision(path: Path) -> str:
    """What a recipe records for the local copy at `path` (see LOCAL_REVISION)."""
    return LOCAL_REVISION + tree_sha256(path, remembered_sha256)


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
    former_repos: tuple[str, ...] = ()
    """Ids the repo had before a rename (models.toml [aliases]); their cached copies count."""
    pinned: bool = False
    """The revision is the one a recipe recorded (`engines.pins`), not models.toml's."""
    optional: str = ""
    """For a component the engine runs without (a metric's model, a second backbone): what it
    is needed for. Empty: every run of the engine needs it."""

    @property
    def key(self) -> str:
        return f"{self.engine}.{self.name}"

    @property
    def variable(self) -> str:
        """The environment variable that overrides this component."""
        return override_variable(self.engine, self.name)

    @property
    def source(self) -> str:
        if self.local_path:
            return self.local_path
        if self.url:
            return self.url
        return f"{self.repo}@{self.revision}"

    @property
    def files(self) -> str:
        """Where in the source the weights are: a file, a subfolder, or the whole repo."""
        if self.local_path:
            return "local copy"
        if self.filename:
            return f"{self.subfolder}/{self.filename}" if self.subfolder else self.filename
        if self.url:
            return self.url.rsplit("/", 1)[-1]
        return f"{self.subfolder}/" if self.subfolder else "the repo"

    def fix(self) -> str:
        if self.pinned:
            return (
                f"The recipe recorded revision {self.revision} of {self.repo}: run it once on "
                "a machine with internet access to fetch that revision, or run it with "
                "--latest-models to use the revision models.toml names now."
            )
        return (
            f"Run `zsstudio download {self.engine}` on a machine with internet access, "
            f"or set {self.variable}=/path/to/a/local/copy."
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
        source = "local" if self.spec.local_path else self.spec.repo or self.spec.url
        entry = {"source": source, "revision": self.revision}
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
        optional=table.get("optional", ""),
    )


def _apply_override(spec: ComponentSpec, value: str) -> ComponentSpec:
    value = value.strip()
    if value.startswith(("/", ".", "~")) or Path(value).expanduser().exists():
        return replace(spec, local_path=value)
    repo, _, revision = value.partition("@")
    return replace(spec, repo=repo, revision=revision or "main", url=None, local_path=None)


def _parse_aliases(table) -> dict[str, str]:
    if not isinstance(table, dict) or not all(
        isinstance(old, str) and isinstance(new, str) and new for old, new in table.items()
    ):
        raise InputError(f"models.toml: [{ALIASES}] must map old repo ids to current ones.")
    return dict(table)


@dataclass
class Registry:
    """Reads models.toml and turns component names into local paths."""

    specs: dict[str, dict[str, ComponentSpec]] = field(default_factory=dict)
    source_file: Path = DEFAULT_MODELS_TOML
    aliases: dict[str, str] = field(default_factory=dict)
    pins: dict[str, str] = field(default_factory=dict)
    """Hub revisions a recipe recorded, by component key ("gan.clip"): while set, `spec`
    resolves those components at that revision (see `engines.pins`); an environment override
    still wins."""

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
        aliases = _parse_aliases(data.pop(ALIASES, {}))
        specs: dict[str, dict[str, ComponentSpec]] = {}
        for engine, components in data.items():
            if not isinstance(components, dict):
                raise InputError(f"models.toml: [{engine}] must be a table of components.")
            specs[engine] = {}
            for name, table in components.items():
                if not isinstance(table, dict):
                    raise InputError(f"models.toml: [{engine}.{name}] must be a table.")
                specs[engine][name] = _parse_spec(engine, name, table)
        return cls(specs=specs, source_file=path, aliases=aliases)

    def engines(self) -> list[str]:
        return list(self.specs)

    def components(self, engine: str) -> list[ComponentSpec]:
        return [self.spec(engine, name) for name in self.specs.get(engine, {})]

    def canonical_repo(self, repo: str) -> str:
        """The current id of a Hub repo that models.toml's [aliases] says was renamed."""
        return self.aliases.get(repo, repo)

    def _with_aliases(self, spec: ComponentSpec) -> ComponentSpec:
        if not spec.repo or spec.local_path:
            return spec
        repo = self.canonical_repo(spec.repo)
        former = tuple(old for old, new in self.aliases.items() if new == repo)
        return replace(spec, repo=repo, former_repos=former)

    def spec(self, engine: str, name: str) -> ComponentSpec:
        try:
            spec = self.specs[engine][name]
        except KeyError as err:
            raise InputError(f"No model `{engine}.{name}` in {self.source_file}.") from err
        override = os.environ.get(override_variable(engine, name))
        if override:
            return self._with_aliases(_apply_override(spec, override))
        if spec.key in self.pins:
            spec = replace(spec, revision=self.pins[spec.key], pinned=True)
        return self._with_aliases(spec)

    def resolve(
        self, engine: str, name: str, download: bool | None = None, force: bool = False
    ) -> ResolvedModel:
        """Local path of a component. Downloads when allowed (default: unless HF_HUB_OFFLINE);
        `force` downloads it again even when a copy is here."""
        return self.resolve_spec(self.spec(engine, name), download, force)

    def resolve_from(
        self, engine: str, name: str, source: str, download: bool | None = None
    ) -> ResolvedModel:
        """A component taken from another source, written as an override is: a local path, or
        owner/repo[@revision] (an old repo id goes through [aliases])."""
        try:
            spec = self.specs[engine][name]
        except KeyError as err:
            raise InputError(f"No model `{engine}.{name}` in {self.source_file}.") from err
        return self.resolve_spec(self._with_aliases(_apply_override(spec, source)), download)

    def resolve_spec(
        self, spec: ComponentSpec, download: bool | None = None, force: bool = False
    ) -> ResolvedModel:
        """Local path of the weights `spec` describes (see `resolve`)."""
        if download is None:
            download = not _offline()
        if spec.local_path:
            path = Path(spec.local_path).expanduser()
            if not path.exists():
                variable = override_variable(spec.engine, spec.name)
                raise ModelUnavailable(
                    spec.key,
                    spec.local_path,
                    f"Fix {variable} to point at an existing folder or file.",
                    "the path does not exist",
                )
            return ResolvedModel(spec, path, local_revision(path))
        if spec.url:
            return self._resolve_url(spec, download, force)
        return self._resolve_hub(spec, download, force)

    def missing(self, engine: str) -> list[tuple[ComponentSpec, str]]:
        """The engine's components that are not on this machine, each with why (nothing is
        downloaded to find out)."""
        found = []
        for spec in self.components(engine):
            try:
                self.resolve_spec(spec, download=False)
            except ModelUnavailable as err:
                found.append((spec, err.reason))
        return found

    def everything_missing(self, err: ModelUnavailable, engine: str) -> ModelUnavailable:
        """`err` (one component could not be had) told with every other component of the
        engine that is missing too, so one message says all there is to fetch."""
        if isinstance(err, ModelsMissing) or engine not in self.specs:
            return err
        others = [(spec, why) for spec, why in self.missing(engine) if spec.key != err.component]
        if not others:
            return err
        return ModelsMissing(err, engine, others)

    def download(self, engine: str, force: bool = False) -> list[ResolvedModel]:
        return [
            self.resolve(engine, spec.name, download=True, force=force)
            for spec in self.components(engine)
        ]

    def _resolve_hub(self, spec: ComponentSpec, download: bool, force: bool) -> ResolvedModel:
        from huggingface_hub import hf_hub_download, snapshot_download

        def fetch(repo: str, local_only: bool) -> Path:
            options = {"revision": spec.revision, "local_files_only": local_only}
            if not local_only:  # a run waiting on it shows the bytes as they arrive
                report(f"downloading {spec.source}")
                options["tqdm_class"] = download_bar()
            if force and not local_only:
                options["force_download"] = True
            if spec.filename:
                name = f"{spec.subfolder}/{spec.filename}" if spec.subfolder else spec.filename
                return Path(hf_hub_download(repo, name, **options))
            patterns = list(spec.allow_patterns) if spec.allow_patterns else None
            if spec.subfolder and not patterns:
                patterns = [f"{spec.subfolder}/*"]
            return Path(snapshot_download(repo, allow_patterns=patterns, **options))

        local_err: Exception | None = None
        if not force:
            # a copy cached under the current id, or under an id the repo had before a rename
            for repo in (spec.repo, *spec.former_repos):
                try:
                    path = fetch(repo, local_only=True)
                except Exception as err:  # huggingface_hub raises several kinds here
                    local_err = local_err or err
                    continue
                return ResolvedModel(spec, path, _snapshot_revision(path, spec.revision))
        if not download:
            raise ModelUnavailable(spec.key, spec.source, spec.fix(), _not_here()) from local_err
        from huggingface_hub import constants

        unreachable = unreachable_reason(constants.ENDPOINT)
        if unreachable:
            raise ModelUnavailable(spec.key, spec.source, spec.fix(), unreachable)
        try:
            path = fetch(spec.repo, local_only=False)
        except Exception as err:
            raise ModelUnavailable(
                spec.key, spec.source, spec.fix(), f"download failed: {download_failure(err)}"
            ) from err
        return ResolvedModel(spec, path, _snapshot_revision(path, spec.revision))

    @staticmethod
    def url_target(spec: ComponentSpec) -> Path:
        """Where a URL component's file is kept: in a cache folder named by its sha256 (by the
        URL's, when none is published)."""
        filename = spec.filename or spec.url.rsplit("/", 1)[-1]
        key = spec.sha256 or hashlib.sha256(spec.url.encode()).hexdigest()
        return CACHE_DIR / "url" / key / filename

    def _resolve_url(self, spec: ComponentSpec, download: bool, force: bool) -> ResolvedModel:
        target = self.url_target(spec)
        problem = "a new download was asked for" if force else download_problem(target, spec.sha256)
        if problem is None:
            return ResolvedModel(spec, target, downloaded_sha256(target))
        if not download:
            where = "" if problem == "not downloaded" else f"{problem}; "
            raise ModelUnavailable(spec.key, spec.url, spec.fix(), where + _not_here())
        unreachable = unreachable_reason(spec.url)
        if unreachable:
            raise ModelUnavailable(spec.key, spec.url, spec.fix(), unreachable)
        try:
            sha256 = download_url(spec.url, target, spec.sha256)
        except Exception as err:
            raise ModelUnavailable(
                spec.key, spec.url, spec.fix(), f"download failed: {download_failure(err)}"
            ) from err
        return ResolvedModel(spec, target, sha256)


def _not_here() -> str:
    return "not downloaded; offline (HF_HUB_OFFLINE)" if _offline() else "not downloaded"


def _snapshot_revision(path: Path, fallback: str) -> str:
    parts = path.parts
    if "snapshots" in parts:
        index = parts.index("snapshots")
        if index + 1 < len(parts):
            return parts[index + 1]
    return fallback
