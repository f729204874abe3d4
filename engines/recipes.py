"""Recipes that carry their input files, so a result can be made again anywhere.

A request's file inputs (a photo, a voice clip, a .zsc file, an adapted generator) are recorded
in the recipe's `inputs` table with their file name and SHA-256. Saved, a recipe becomes a
bundle: `recipe.json` whose file parameters name `inputs/<parameter>-<file name>`, beside those
files; the app offers it as one zip, `Result.save` writes it as a folder. A command that writes
one output file (`zsstudio tts -o x.wav`) writes `x.recipe.json` and `x.inputs/` beside it the
same way. Reading a bundle (a zip, a folder or its recipe.json) points the parameters at the
files and checks each hash; an input can also be given from elsewhere (`zsstudio run
recipe.json --input voice=me.wav`), and is checked against the recorded hash too.

A recipe is a file someone sent, so it reads only files inside its own folder or zip: each file
parameter names a relative path there (no `..`, no symbolic link on the way) with a recorded
SHA-256. An absolute path, an escape, a link or a file parameter without a hash is refused;
the user gives such a file with `--input`, which they type themselves.
"""

from __future__ import annotations

import atexit
import dataclasses
import errno
import json
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .errors import InputError
from .fields import SEED_MAX, VALUE, declared_fields, field_default
from .files import atomic_copy
from .hashing import file_sha256
from .outputs import write_bytes
from .scratch import temp_dir

MAX_RECIPE_BYTES = 1 << 20  # recipes are a few KB; a larger file is not one
RECIPE_FILE = "recipe.json"
INPUTS_FOLDER = "inputs"
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_BUNDLE_BYTES = 8 * 2**30
"""What a recipe zip may unpack to, all files together (its inputs are photos, clips and
generators: a StyleGAN2 at 1024 px is about 380 MB)."""


@dataclass
class Recipe:
    """Everything needed to run a result again: engine, models, seed, parameters, version."""

    engine: str
    params: dict[str, Any]
    models: dict[str, dict] = field(default_factory=dict)
    seed: int | None = None
    version: str = __version__
    inputs: dict[str, dict] = field(default_factory=dict)
    """The input files the params name, by parameter: {"name", "sha256"} (and "file", its
    place in a bundle); see `engines.recipes`."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, path: str | Path) -> Path:
        return write_bytes(Path(path), (self.to_json() + "\n").encode("utf-8"))

    @classmethod
    def from_dict(cls, data: dict) -> Recipe:
        if not isinstance(data, dict) or "engine" not in data or "params" not in data:
            raise InputError("A recipe is a JSON object with at least `engine` and `params`.")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        expected = {
            "engine": str,
            "params": dict,
            "models": dict,
            "version": str,
            "inputs": dict,
        }
        for name, kind in expected.items():
            if name in values and not isinstance(values[name], kind):
                raise InputError(
                    f"A recipe's `{name}` must be a {kind.__name__}, got {values[name]!r}."
                )
        seed = values.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise InputError(f"A recipe's `seed` must be a whole number, got {seed!r}.")
        if seed is not None and not 0 <= seed <= SEED_MAX:
            raise InputError(f"A recipe's `seed` is {seed}; it must be 0 to {SEED_MAX}.")
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path, inputs: dict[str, str] | None = None) -> Recipe:
        """A recipe from recipe.json, a folder holding it, or a recipe zip, its input files
        found in the bundle (or given in `inputs`, parameter -> path) and checked against the
        hashes it recorded."""
        return read(path, inputs)

    def save_bundle(self, folder: str | Path) -> list[Path]:
        """recipe.json and the input files it names (inputs/) into `folder`."""
        return write_folder(self, Path(folder))

    def save_beside(self, path: str | Path) -> list[Path]:
        """The recipe at `path` (x.recipe.json) and the input files it names in x.inputs/
        beside it: what a command writing one output file (x.wav) puts next to it."""
        return write_beside(self, Path(path))

    def save_zip(self, path: str | Path) -> Path:
        """recipe.json and its input files as one zip (`zsstudio run` takes it as it is)."""
        return write_zip(self, Path(path))


def record_inputs(request_type: type, params: dict[str, Any]) -> dict[str, dict]:
    """The file inputs among `params`: every field declared with `value()` whose recipe value
    names an existing file, by parameter: {"name": file name, "sha256": ...}."""
    inputs = {}
    for declared, spec in declared_fields(request_type):
        path = params.get(declared.name)
        if spec.kind == VALUE and isinstance(path, str) and path and Path(path).is_file():
            inputs[declared.name] = {"name": Path(path).name, "sha256": file_sha256(path)}
    return inputs


def bundle_name(parameter: str, name: str, folder: str = INPUTS_FOLDER) -> str:
    """Where an input goes in a bundle: inputs/<parameter>-<file name, made safe>."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "file"
    if not safe.startswith(f"{parameter}-"):  # a re-run of a bundle keeps its names
        safe = f"{parameter}-{safe}"
    return f"{folder}/{safe}"


def inputs_folder_for(recipe_name: str) -> str:
    """The inputs folder beside a recipe file: recipe.json -> inputs, x.recipe.json ->
    x.inputs, x-recipe.json -> x-inputs."""
    if recipe_name.endswith(RECIPE_FILE):
        return recipe_name.removesuffix(RECIPE_FILE) + INPUTS_FOLDER
    return f"{Path(recipe_name).stem}.{INPUTS_FOLDER}"


def portable(recipe: Recipe, folder: str = INPUTS_FOLDER) -> tuple[Recipe, dict[str, Path]]:
    """The recipe as a bundle holds it (each file parameter names its place in the bundle,
    under `folder`), and the files to put there: {place in the bundle: file now}."""
    params = dict(recipe.params)
    files: dict[str, Path] = {}
    inputs = {}
    for parameter, entry in recipe.inputs.items():
        place = bundle_name(parameter, entry["name"], folder)
        current = params.get(parameter)
        if isinstance(current, str) and Path(current).is_file():
            files[place] = Path(current)
        params[parameter] = place
        inputs[parameter] = {**entry, "file": place}
    return dataclasses.replace(recipe, params=params, inputs=inputs), files


def write_folder(recipe: Recipe, folder: Path) -> list[Path]:
    """recipe.json and inputs/ in `folder`; returns the paths written."""
    return write_beside(recipe, folder / RECIPE_FILE)


def write_beside(recipe: Recipe, path: Path) -> list[Path]:
    """The recipe at `path` and the input files it names in the inputs folder beside it
    (`inputs_folder_for`), named relative to it: the folder holding both can move, and the
    recipe still runs. Returns the paths written."""
    bundled, files = portable(recipe, inputs_folder_for(path.name))
    written = [write_bytes(path, (bundled.to_json() + "\n").encode("utf-8"))]
    for place, source in files.items():
        target = path.parent / place
        if source.resolve() != target.resolve():
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_copy(source, target)
        written.append(target)
    return written


def write_zip(recipe: Recipe, path: Path) -> Path:
    """One zip holding recipe.json and its inputs (what the app offers for download)."""
    bundled, files = portable(recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(RECIPE_FILE, bundled.to_json() + "\n")
        for place, source in files.items():
            bundle.write(source, place)
    partial.replace(path)
    return path


def read(path: str | Path, given: dict[str, str] | None = None) -> Recipe:
    """A recipe from its recipe.json, a folder holding one, or a zip; its file parameters
    pointing at the bundle's files (or at `given` ones, parameter -> path), each checked
    against the SHA-256 the recipe recorded. A recipe is a file someone sent: it reads only
    files inside its own folder or zip, never a path of this machine it names."""
    path = Path(path)
    if path.is_dir():
        path = path / RECIPE_FILE
    elif path.is_file() and zipfile.is_zipfile(path):
        path = _unpack(path) / RECIPE_FILE
    recipe = Recipe.from_dict(_read_json(path))
    return with_inputs(recipe, path.parent, given or {}, file_fields(recipe))


def file_fields(recipe: Recipe) -> dict[str, Any] | None:
    """The value fields (files, images, boxes) of the request the recipe makes, with their
    defaults; None when its engine or task is not one of ours (the engine refuses it)."""
    from .capabilities import CAPABILITIES

    known = {capability.key: capability for capability in CAPABILITIES}
    if recipe.engine not in known:
        return None
    types = list(known[recipe.engine].load_engine_class().tasks)
    task = recipe.params.get("task")
    chosen = types if len(types) == 1 else [t for t in types if t.task == task]
    if not chosen:
        return None
    return {
        declared.name: field_default(declared)
        for declared, spec in declared_fields(chosen[0])
        if spec.kind == VALUE
    }


def with_inputs(
    recipe: Recipe,
    folder: Path,
    given: dict[str, str],
    fields: dict[str, Any] | None = None,
) -> Recipe:
    """The recipe with its file parameters resolved (see `read`): each recorded input from the
    bundle in `folder` or from `given`, checked against its hash. With the request's value
    `fields` known, a file parameter without a recorded input is refused unless given."""
    allowed = set(recipe.inputs) | set(fields or ())
    unknown = sorted(set(given) - allowed)
    if unknown:
        names = ", ".join(sorted(allowed) or ["none"])
        raise InputError(f"This recipe has no input {unknown[0]!r}; its file inputs: {names}.")
    params = dict(recipe.params)
    for parameter, entry in recipe.inputs.items():
        _check_entry(recipe, parameter, entry, fields)
        if parameter in given:
            params[parameter] = _checked(Path(given[parameter]), parameter, entry, "given")
        else:
            bundled = _inside(folder, params.get(parameter), parameter)
            params[parameter] = _checked(bundled, parameter, entry, "bundled")
    for parameter, default in (fields or {}).items():
        if parameter in recipe.inputs:
            continue
        if parameter in given:
            params[parameter] = _given_unrecorded(Path(given[parameter]), parameter)
        elif _names_a_file(params.get(parameter), default):
            raise InputError(
                f"This recipe names {params[parameter]!r} as its {parameter} input but records "
                f"no sha256 for it: a recipe runs only on the files its bundle holds, checked "
                f"by their hash. Give the file yourself: --input {parameter}=PATH."
            )
    return dataclasses.replace(recipe, params=params)


def _check_entry(recipe: Recipe, parameter: str, entry: Any, fields: dict | None) -> None:
    if fields is not None and parameter not in fields:
        names = ", ".join(sorted(fields)) or "none"
        raise InputError(
            f"This recipe records an input file for {parameter!r}, which is not a file "
            f"parameter of the {recipe.engine} engine (those are: {names})."
        )
    if not (
        isinstance(entry, dict)
        and isinstance(entry.get("sha256"), str)
        and SHA256.fullmatch(entry["sha256"])
    ):
        raise InputError(
            f"The recipe's entry for input {parameter!r} is not readable: it needs the file's "
            "`sha256` (64 hex digits)."
        )


def _inside(folder: Path, value: Any, parameter: str) -> Path:
    """The bundled file a parameter names: a relative path inside the recipe's folder, with no
    `..` and no symbolic link on the way (a bundle holds its files, it does not point at ours)."""
    way_out = f"Give the file yourself: --input {parameter}=PATH."
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"This recipe names no file for its {parameter} input. {way_out}")
    relative = Path(value)
    if relative.is_absolute() or value.startswith("~"):
        raise InputError(
            f"This recipe names {value} for its {parameter} input: a path on this machine, "
            f"not a file in its bundle (a recipe reads only files inside its folder or zip). "
            f"{way_out}"
        )
    if ".." in relative.parts:
        raise InputError(
            f"This recipe names {value} for its {parameter} input: `..` leads out of its "
            f"bundle (a recipe reads only files inside its folder or zip). {way_out}"
        )
    step = folder
    for part in relative.parts:
        step = step / part
        if step.is_symlink():
            raise InputError(
                f"This recipe's {parameter} input {value} is a symbolic link ({step.name}): a "
                f"bundle holds its files, it does not point elsewhere. {way_out}"
            )
    return step


def _given_unrecorded(path: Path, parameter: str) -> str:
    """A file (or folder, such as a NeRF scene) the user gave for a parameter the recipe
    recorded no hash for: used as given."""
    path = path.expanduser()
    if not path.exists():
        raise InputError(f"--input {parameter}={path}: no such file or folder.")
    return str(path.resolve())


def _names_a_file(value: Any, default: Any) -> bool:
    """Whether a value field's recipe value names a file: text that is neither empty, the
    field's own default (NeRF's "example") nor a marker of in-memory data ("<in-memory ...>")."""
    if not isinstance(value, str) or not value.strip() or value == default:
        return False
    return not (value.startswith("<") and value.endswith(">"))


def _checked(path: Path, parameter: str, entry: dict, how: str) -> str:
    name = entry.get("name", "?")
    path = path.expanduser()
    if not path.is_file():
        raise InputError(
            f"This recipe's {parameter} input ({name}) is not at {path}. Run the recipe from "
            f"the zip or folder it came in, or give the file: --input {parameter}=PATH."
        )
    if file_sha256(path) != entry["sha256"]:
        where = "the file given" if how == "given" else str(path)
        raise InputError(
            f"{where} is not the {parameter} input this recipe was made with ({name}, "
            f"sha256 {entry['sha256'][:12]}...): its contents differ."
        )
    return str(path.resolve())


def _read_json(path: Path) -> dict:
    try:
        if path.stat().st_size > MAX_RECIPE_BYTES:
            raise InputError(f"{path.name} is over {MAX_RECIPE_BYTES >> 10} KB: not a recipe.")
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise InputError(f"Recipe file {path.name} does not exist.") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"Recipe file {path.name} is not readable JSON: {err}.") from err
    except (RecursionError, ValueError) as err:  # nesting too deep, a 5000-digit number
        raise InputError(
            f"Recipe file {path.name} is not a recipe: {str(err).splitlines()[0]}."
        ) from None


def _unpack(path: Path) -> Path:
    """A recipe zip unpacked into a temporary folder (removed when the process ends): only
    recipe.json and inputs/<file>, within MAX_BUNDLE_BYTES."""
    folder = temp_dir("recipe-")  # removed with this process's scratch folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    try:
        with zipfile.ZipFile(path) as bundle:
            members = [m for m in bundle.infolist() if not m.is_dir()]
            for member in members:
                if not _allowed(member.filename):
                    raise InputError(
                        f"{path.name} holds {member.filename!r}: a recipe zip holds only "
                        f"{RECIPE_FILE} and {INPUTS_FOLDER}/<file>."
                    )
            if sum(m.file_size for m in members) > MAX_BUNDLE_BYTES:
                raise InputError(f"{path.name} unpacks to more than {MAX_BUNDLE_BYTES} bytes.")
            for member in members:
                _extract(bundle, member, folder / member.filename)
    except InputError:
        raise
    except MemoryError:
        raise InputError(f"{path.name} is too large for this machine to unpack.") from None
    except OSError as err:
        if not _writing_failed(err, folder):
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise InputError(f"{path.name} is not a readable zip: {reason}.") from err
        # a full disk: named by the user's zip, not by our scratch folder
        what = err.strerror or type(err).__name__
        raise OSError(err.errno, f"{what} (unpacking the recipe zip)", str(path)) from err
    except Exception as err:  # zipfile raises a different kind for each way a zip is broken
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{path.name} is not a readable zip: {reason}.") from err
    if not (folder / RECIPE_FILE).is_file():
        raise InputError(f"{path.name} holds no {RECIPE_FILE}.")
    return folder


def _writing_failed(err: OSError, folder: Path) -> bool:
    """Whether an OSError while unpacking came from writing (a full disk, a quota, a file in
    our folder), not from reading a broken zip (zipfile's seek past the end is one too)."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return True
    return err.filename is not None and Path(err.filename).is_relative_to(folder)


def _allowed(name: str) -> bool:
    return (
        name == RECIPE_FILE
        or re.fullmatch(rf"{INPUTS_FOLDER}/[A-Za-z0-9_-][A-Za-z0-9._-]*", name) is not None
    )


def _extract(bundle: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path) -> None:
    """Copy one member, refusing more bytes than its header declared (a lying zip)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    copied = 0
    with bundle.open(member) as source, open(target, "wb") as out:
        while chunk := source.read(1 << 20):
            copied += len(chunk)
            if copied > member.file_size:
                raise InputError(f"{member.filename} in the zip is larger than it says.")
            out.write(chunk)
