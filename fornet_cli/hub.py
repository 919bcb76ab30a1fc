"""Named weights (``weights.toml``) and the Hugging Face Hub: resolve, download, verify, load.

Downloads go through ``huggingface_hub`` (its cache, ``HF_HUB_OFFLINE``, ``HF_ENDPOINT``, tokens). Every
file is then checked: against the sha256 pinned in the registry when there is one, otherwise against the
Hub's own content hash (the ETag the cache stores it under: sha256 for LFS files, the git blob sha1 for
small files). A mismatch refuses to load and deletes nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .data.normalize import IMAGENET_MEAN, IMAGENET_STD
from .errors import ChecksumError, UnknownModelError, WeightsError, close_matches

KINDS = ("backbone", "fornet")
_HEX40 = re.compile(r"[0-9a-f]{40}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class WeightSpec:
    """One entry of a weights registry."""

    name: str
    kind: Literal["backbone", "fornet"]
    repo_id: str
    filename: str
    revision: str
    architecture: str
    classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    license: str
    source: str
    sha256: str | None = None
    config_filename: str | None = None  # fornet checkpoints: the config.json beside the weights
    citation: str = ""
    metrics: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    registry_file: str = ""
    default: bool = False  # `default = true`: the weights commands use when given none (fornet_cli/weights/defaults.py)

    @property
    def pinned(self) -> bool:
        """True when the revision is a commit hash (a branch or tag can move)."""
        return bool(_HEX40.fullmatch(self.revision))


def packaged_registry() -> Path:
    """``weights.toml`` shipped in the wheel, or at the repository root in an editable install."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "weights.toml", here.parent / "weights.toml"):
        if candidate.is_file():
            return candidate
    raise WeightsError("weights.toml is missing from the fornet installation; reinstall fornet-cli.")


def registry_files(extra: str | os.PathLike | None = None) -> list[Path]:
    """The packaged registry, then ``$FORNET_WEIGHTS`` (os.pathsep-separated), then ``extra``; later wins."""
    files = [packaged_registry()]
    env = os.environ.get("FORNET_WEIGHTS", "")
    files += [Path(p) for p in env.split(os.pathsep) if p]
    if extra:
        files.append(Path(extra))
    return files


def load_registry(extra: str | os.PathLike | None = None) -> dict[str, WeightSpec]:
    specs: dict[str, WeightSpec] = {}
    for path in registry_files(extra):
        specs.update(parse_registry(path))
    return specs


def parse_registry(path: Path) -> dict[str, WeightSpec]:
    if not path.is_file():
        raise WeightsError(f"Weights registry {path} does not exist (from --registry or FORNET_WEIGHTS).")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise WeightsError(f"Weights registry {path} is not valid TOML: {exc}") from None
    return {name: _parse_entry(name, entry, path) for name, entry in data.items()}


def _parse_entry(name: str, entry: Any, path: Path) -> WeightSpec:
    where = f"{path} [{name}]"
    if not isinstance(entry, dict):
        raise WeightsError(f"{where}: expected a table of fields.")
    required = ("kind", "repo_id", "filename", "revision", "architecture", "classes", "license", "source")
    missing = [k for k in required if k not in entry]
    if missing:
        raise WeightsError(f"{where}: missing field(s) {', '.join(missing)}.")
    kind = entry["kind"]
    if kind not in KINDS:
        raise WeightsError(f"{where}: kind must be one of {KINDS}, not {kind!r}.")
    if not isinstance(entry["repo_id"], str) or not REPO_ID.fullmatch(entry["repo_id"]):
        raise WeightsError(f"{where}: repo_id {entry['repo_id']!r} is not of the form 'org/name'.")
    for key in ("filename", "config_filename"):
        if key in entry:
            check_relative_filename(entry[key], where)
    check_revision(entry["revision"], where)
    sha = entry.get("sha256")
    if sha is not None and not (isinstance(sha, str) and _HEX64.fullmatch(sha.lower())):
        raise WeightsError(f"{where}: sha256 must be 64 hexadecimal characters.")
    if kind == "fornet" and "config_filename" not in entry:
        raise WeightsError(f"{where}: a fornet checkpoint needs config_filename (usually config.json).")
    if entry.get("default", False) not in (True, False) or (entry.get("default") and kind != "fornet"):
        raise WeightsError(f"{where}: default = true marks the FoR-Net checkpoint used when no --weights is given.")
    try:
        mean = tuple(float(v) for v in entry.get("mean", IMAGENET_MEAN))
        std = tuple(float(v) for v in entry.get("std", IMAGENET_STD))
        classes = int(entry["classes"])
    except (TypeError, ValueError):
        raise WeightsError(f"{where}: classes must be a number, mean and std lists of 3 numbers.") from None
    if len(mean) != 3 or len(std) != 3:
        raise WeightsError(f"{where}: mean and std need 3 values each.")
    return WeightSpec(
        name=name,
        kind=kind,
        repo_id=entry["repo_id"],
        filename=entry["filename"],
        revision=str(entry["revision"]),
        architecture=str(entry["architecture"]),
        classes=classes,
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
        license=str(entry["license"]),
        source=str(entry["source"]),
        sha256=sha.lower() if sha else None,
        config_filename=entry.get("config_filename"),
        citation=str(entry.get("citation", "")),
        metrics=dict(entry.get("metrics", {})),
        registry_file=str(path),
        default=bool(entry.get("default", False)),
    )


def check_relative_filename(filename: Any, where: str) -> None:
    """A file inside a repo: relative, forward slashes, no ``..`` (must not escape the cache folder)."""
    if (
        not isinstance(filename, str)
        or not filename
        or filename.startswith(("/", "\\"))
        or "\\" in filename
        or re.match(r"^[A-Za-z]:", filename)
        or any(part in ("", ".", "..") for part in filename.split("/"))
    ):
        raise WeightsError(f"{where}: filename {filename!r} must be a relative path inside the repository.")


def check_revision(revision: Any, where: str) -> None:
    """A branch, tag or commit: huggingface_hub stores it as a file name under ``refs/`` in its cache, so a
    revision such as ``../../x`` would write outside the cache."""
    if (
        not isinstance(revision, str)
        or not revision
        or revision.startswith("/")
        or "\\" in revision
        or any(ord(c) < 32 for c in revision)
        or any(part in ("", ".", "..") for part in revision.split("/"))
    ):
        raise WeightsError(f"{where}: revision {revision!r} is not a branch, tag or commit name.")


def get_spec(name: str, registry: dict[str, WeightSpec]) -> WeightSpec:
    try:
        return registry[name]
    except KeyError:
        raise UnknownModelError(
            f"No weights named {name!r}.{close_matches(name, list(registry))} "
            "`fornet weights list` shows the registry; --weights also takes a file, a folder or hf://org/repo."
        ) from None


# --------------------------------------------------------------------------------------- download


def hub_download(
    repo_id: str,
    filename: str,
    revision: str = "main",
    *,
    sha256: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    endpoint: str | None = None,
    force: bool = False,
    what: str | None = None,
) -> Path:
    """Download one file through huggingface_hub (or take it from its cache) and verify it.

    ``endpoint`` defaults to huggingface_hub's (``HF_ENDPOINT``, read when huggingface_hub is imported).
    """
    import huggingface_hub
    from huggingface_hub import constants, errors

    check_relative_filename(filename, repo_id)
    check_revision(revision, repo_id)
    what = what or f"{repo_id}/{filename}@{revision}"
    server = endpoint or constants.ENDPOINT
    try:
        cache_only = False if constants.HF_HUB_OFFLINE else _check_hub_answer(
            repo_id, filename, revision, cache_dir, endpoint, what, server
        )
        path = huggingface_hub.hf_hub_download(
            repo_id, filename, revision=revision, cache_dir=cache_dir, force_download=force and not cache_only,
            endpoint=endpoint, etag_timeout=constants.HF_HUB_ETAG_TIMEOUT, local_files_only=cache_only,
        )
    # LocalEntryNotFoundError subclasses EntryNotFoundError: it must come first.
    except errors.LocalEntryNotFoundError as exc:
        if constants.HF_HUB_OFFLINE:
            raise WeightsError(
                f"{what} is not in the Hugging Face cache and HF_HUB_OFFLINE is set. Download it once with "
                "network access (`fornet weights download`), or unset HF_HUB_OFFLINE."
            ) from None
        cause = _root_cause(exc)
        raise WeightsError(
            f"Could not reach {server} to download {what}, and it is not cached ({cause}). "
            "Check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache only."
        ) from None
    except errors.RepositoryNotFoundError:
        raise WeightsError(
            f"Repository {repo_id} was not found on {server} (or it is private: log in with "
            "`hf auth login` or set HF_TOKEN)."
        ) from None
    except errors.RevisionNotFoundError:
        raise WeightsError(f"Revision {revision!r} does not exist in {repo_id}; check the registry entry.") from None
    except errors.EntryNotFoundError:
        raise WeightsError(f"{repo_id}@{revision} has no file {filename!r}; check the registry entry.") from None
    except errors.HfHubHTTPError as exc:
        raise WeightsError(f"The Hub refused the download of {what}: {exc}") from None
    except OSError as exc:
        raise WeightsError(f"Download of {what} failed: {exc}") from None
    except Exception as exc:
        if not _network_error(exc):
            raise
        raise WeightsError(
            f"The download of {what} from {server} stopped ({_root_cause(exc)}): the server sent no data for "
            f"{constants.HF_HUB_DOWNLOAD_TIMEOUT} s (HF_HUB_DOWNLOAD_TIMEOUT), {_DOWNLOAD_RETRIES} times. Nothing was "
            "cached; try again later, or raise HF_HUB_DOWNLOAD_TIMEOUT on a slow connection."
        ) from None
    path = Path(path)
    verify_file(path, sha256, what)
    return path


_DOWNLOAD_RETRIES = 6  # huggingface_hub's http_get: one attempt and 5 resumed retries
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # what a commit hash or content hash looks like


def _check_hub_answer(
    repo_id: str, filename: str, revision: str, cache_dir: Any, endpoint: str | None, what: str, server: str
) -> bool:
    """Ask the server for the file's metadata once ourselves, before huggingface_hub downloads it. Returns True
    when the server cannot be reached but the file is cached (then only the cache is used).

    Two things huggingface_hub (2.4) does not bound or check: when a metadata request times out and the file
    is not cached, it retries for minutes (6 x 60 s whatever HF_HUB_ETAG_TIMEOUT says); and it names the
    cached file after the ETag the server sends, unchecked, so ``ETag: "../../x"`` writes outside the cache.
    This request waits HF_HUB_ETAG_TIMEOUT once, and refuses answers that are not safe file names.
    """
    import huggingface_hub
    from huggingface_hub import constants

    url = huggingface_hub.hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    timeout = constants.HF_HUB_ETAG_TIMEOUT
    try:
        meta = huggingface_hub.get_hf_file_metadata(url, timeout=timeout, endpoint=endpoint)
    except Exception as exc:
        if not _network_error(exc):
            raise  # HTTP errors: hub_download explains them
        if isinstance(huggingface_hub.try_to_load_from_cache(repo_id, filename, cache_dir, revision), str):
            return True  # as huggingface_hub does when the Hub is unreachable, without asking a second time
        if _is_timeout(exc):
            raise WeightsError(
                f"{server} did not answer within {timeout} s (HF_HUB_ETAG_TIMEOUT) when asked for {what}, which is "
                "not cached. Check the network or HF_ENDPOINT, raise HF_HUB_ETAG_TIMEOUT on a slow connection, or "
                "set HF_HUB_OFFLINE=1 to use the cache only."
            ) from None
        raise WeightsError(
            f"Could not reach {server} to download {what}, and it is not cached ({_root_cause(exc)}). "
            "Check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache only."
        ) from None
    for header, value in (("ETag", meta.etag), ("X-Repo-Commit", meta.commit_hash)):
        if value is not None and not _SAFE_NAME.fullmatch(value):
            raise WeightsError(
                f"{server} answered for {what} with the {header} {value[:100]!r}, which is not a hash; fornet refused "
                "to download it (the Hub cache would use it as a file name). Check HF_ENDPOINT: it is not the Hub."
            )
    return False


def _network_error(exc: BaseException) -> bool:
    """A timeout or connection failure, whichever HTTP client huggingface_hub uses (httpx, httpx2, requests)."""
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    return type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "requests", "urllib3")


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return f"{type(exc).__name__}: {exc}"


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _git_blob_sha1(path: Path) -> str:
    """git's blob id: sha1 over ``blob <size>\\0`` and the content (the Hub's ETag of a non-LFS file)."""
    header = f"blob {path.stat().st_size}\0".encode()
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, lambda: hashlib.sha1(header)).hexdigest()


def verify_file(path: Path, sha256: str | None, what: str) -> str:
    """Check a downloaded file; returns its sha256. Deletes nothing on a mismatch."""
    digest = file_sha256(path)
    blob = Path(os.path.realpath(path)).name  # huggingface_hub names cached blobs by their ETag
    if sha256 is not None:
        expected, how = sha256, "the sha256 pinned in the weights registry"
    elif _HEX64.fullmatch(blob):
        expected, how = blob, "the Hub's content hash (LFS sha256)"
    elif _HEX40.fullmatch(blob):
        expected, how, digest_cmp = blob, "the Hub's content hash (git blob sha1)", _git_blob_sha1(path)
        if digest_cmp != expected:
            raise _mismatch(what, path, how, expected, digest_cmp)
        return digest
    else:
        return digest  # not in a huggingface_hub cache and nothing pinned: nothing to compare with
    if digest != expected:
        raise _mismatch(what, path, how, expected, digest)
    return digest


def _mismatch(what: str, path: Path, how: str, expected: str, actual: str) -> ChecksumError:
    return ChecksumError(
        f"Checksum mismatch for {what}: {how} is {expected}, but {path} hashes to {actual}. fornet refused to "
        f"load it and deleted nothing. If the file was damaged in transit, delete the cached copy "
        f"{os.path.realpath(path)} (or run `fornet weights download NAME --force` for a named entry) and try "
        "again; if the registry entry is wrong, fix its sha256."
    )


def download_spec(
    spec: WeightSpec,
    *,
    cache_dir: str | os.PathLike | None = None,
    endpoint: str | None = None,
    force: bool = False,
) -> tuple[Path, Path | None]:
    """Download a registry entry's weights file and, for fornet checkpoints, its config.json."""
    common = {"cache_dir": cache_dir, "endpoint": endpoint, "force": force}
    path = hub_download(
        spec.repo_id, spec.filename, spec.revision, sha256=spec.sha256,
        what=f"weights {spec.name!r} ({spec.repo_id}/{spec.filename}@{spec.revision})", **common,
    )
    config = None
    if spec.config_filename:
        config = hub_download(spec.repo_id, spec.config_filename, spec.revision, **common)
    return path, config


def pin_spec(spec: WeightSpec, *, cache_dir: str | os.PathLike | None = None, endpoint: str | None = None) -> dict[str, str]:
    """Resolve an entry's revision to the commit it points at now and hash its file: the values to pin.

    The file is downloaded (or taken from the cache) and verified like any download first.
    """
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url

    path, _ = download_spec(spec, cache_dir=cache_dir, endpoint=endpoint)
    url = hf_hub_url(spec.repo_id, spec.filename, revision=spec.revision, endpoint=endpoint or constants.ENDPOINT)
    try:
        commit = get_hf_file_metadata(url).commit_hash
    except Exception as exc:  # offline, or the Hub went away between the two calls
        raise WeightsError(f"Could not resolve {spec.repo_id}@{spec.revision} to a commit: {_root_cause(exc)}") from None
    if not commit or not _HEX40.fullmatch(commit):
        raise WeightsError(f"The Hub did not name the commit of {spec.repo_id}@{spec.revision}.")
    return {"revision": commit, "sha256": file_sha256(path)}
