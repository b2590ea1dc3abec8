"""The job YAML spec: validated with pydantic v2, errors that name the field (and the YAML line).

name: llama-ft                       # required: letters, digits, - _ .
program: k-gpu-2025                  # the program to charge (its grant for your tenant is used)
grant: g-123                         # or the grant itself
kind: training                       # training | finetuning | inference | batch
resources:                           # one of:
  type: h100                         #   a type and a count
  count: 4
# resources: {types: [h100, rngd], count: 2}        a list of acceptable alternatives
# resources: [{type: h100, count: 2}, {type: rngd, count: 2}]   (same count for every alternative)
# resources: {count: 2, min_memory_gb: 80}          any type with at least N GB per device
command: python train.py
env: {HF_HOME: /data/hf}
workdir: /work
max_run_time: 2h                     # seconds, or a number with s/m/h/d
checkpoint_dir: /ckpt/llama-ft
steps: 10000                         # optional: total steps, for progress and estimates
constraints: {domestic_only: true, zone: seoul}
priority: 0                          # -1000 .. 0 (a member's): lower runs later; above 0 only an admin
public: false                        # a public service (program rules may apply)
preemptible: false                   # true: the job checkpoints on SIGTERM and may be stopped at a lease
                                     # boundary and resumed (docs/scheduling.md); false: never time-sliced
grace_seconds: 30                    # time between the checkpoint signal (SIGTERM) and a forced stop
faster_type: cost-neutral            # may the pool run it on a type faster than the scheduler chose, which
                                     # its grant pays: cost-neutral (default: only where its KRW per step is
                                     # not higher) | any | never (docs/scheduling.md)
image: localhost/train:1             # optional: run in this OCI image (podman; on the node already)
limits: {memory: 64g, processes: 4096, cpus: 16, scratch: 20g}   # per rank; at most the operator's
"""

from __future__ import annotations

import difflib
import json
import math
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from accelpool.core.errors import InputError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION_SECONDS = 10 * 366 * 86400.0  # max_run_time: ten years
MAX_NAME = 100
MAX_ENV_VARS = 256
MAX_ENV_VALUE = 32_768  # characters per environment value
MAX_PATH = 4_096  # workdir, checkpoint_dir
MAX_REF = 200  # program, grant, accelerator type, zone
MAX_TYPES = 64  # alternatives or types a job lists


def _no_nul(v: str) -> str:
    if "\x00" in v:
        raise ValueError("must not contain a NUL character (\\u0000)")
    return v


# Strings without NUL, of bounded length: a NUL can reach neither a process nor a database row.
_NoNul = AfterValidator(_no_nul)
Ref = Annotated[str, Field(max_length=MAX_REF), _NoNul]
PathText = Annotated[str, Field(max_length=MAX_PATH), _NoNul]


def _not_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("must run something: it is empty or only spaces")
    return v


Command = Annotated[str, Field(min_length=1, max_length=100_000), _NoNul, AfterValidator(_not_blank)]
EnvName = Annotated[str, Field(max_length=256), _NoNul]
EnvValue = Annotated[str, Field(max_length=MAX_ENV_VALUE), _NoNul]


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like ``90m``; ValueError when it is neither."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 3600, '90m' or '2h'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError("must be a duration such as 3600, '90m' or '2h'")
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    if not math.isfinite(seconds):
        raise ValueError("must be a finite duration")
    if seconds <= 0:
        raise ValueError("must be > 0 seconds")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"must be at most {MAX_DURATION_SECONDS:.0f} seconds (10 years)")
    return seconds


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_SIZE_UNIT = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
# an OCI image reference (registry/name:tag or @digest); never starts with '-' (not an option to podman)
SHELL_READONLY = frozenset({"BASHOPTS", "BASH_VERSINFO", "EUID", "PPID", "SHELLOPTS", "UID"})
"""Variables bash keeps read-only: exporting one ends the shell that runs a job's command (where /bin/sh
is bash), and bash never let the environment set them anyway."""
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}\Z")


def parse_size(value: Any) -> int:
    """Bytes from a number or a string like ``512m``, ``4g``, ``4GiB`` (binary units); ValueError else."""
    if isinstance(value, bool):
        raise ValueError("must be a size such as 1073741824, '512m' or '4g'")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and math.isfinite(value):
        n = int(value)
    else:
        m = _SIZE.match(str(value))
        if not m:
            raise ValueError("must be a size such as 1073741824, '512m' or '4g'")
        # exact: a float of a few hundred digits is inf, and int(inf) was a 500 (a review's probe)
        n = int(Decimal(m.group(1)) * _SIZE_UNIT[m.group(2).lower()])
    if n < 1024 * 1024:
        raise ValueError("must be at least 1 MiB")
    if n > 1024**5:
        raise ValueError("must be at most 1 PiB")
    return n


class Limits(BaseModel):
    """Per-job limits (docs/security.md says which mechanism enforces each on this host). Each may only
    lower the operator's maximum; a value above it fails the job at start with a reason naming the field."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)
    memory: int | str | None = Field(default=None, description="bytes, or e.g. '512m', '4g' (per rank)")
    processes: int | None = Field(default=None, ge=1, le=1_000_000, strict=True, description="per rank")
    cpus: float | int | None = Field(default=None, gt=0, le=4096, description="CPU cores (per rank)")
    scratch: int | str | None = Field(default=None, description="size of /tmp (bytes or e.g. '1g')")

    @field_validator("memory", "scratch")
    @classmethod
    def _size(cls, v: Any) -> int | None:
        return None if v is None else parse_size(v)

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.model_dump().items() if v is not None}


class Alternative(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)
    type: Ref = Field(min_length=1)
    count: int = Field(default=1, ge=1, le=4096, strict=True)


class Resources(BaseModel):
    """Devices a job needs, all of one type at once (gang)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)
    type: Ref | None = None
    types: list[Ref] | None = Field(default=None, max_length=MAX_TYPES)
    count: int = Field(default=1, ge=1, le=4096, strict=True, description="devices, all started together")
    min_memory_gb: float | None = Field(
        default=None, gt=0, le=1e6, description="any type with at least this memory"
    )

    @model_validator(mode="after")
    def _one_way(self) -> Resources:
        if self.type is not None and self.types is not None:
            raise ValueError("give either 'type' or 'types', not both")
        if self.types is not None and not self.types:
            raise ValueError("'types' must list at least one accelerator type")
        return self

    def allowed(self) -> list[str]:
        return [self.type] if self.type else list(self.types or [])


class Constraints(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)
    domestic_only: bool = Field(default=False, description="only Korean NPUs")
    zone: Ref | None = None
    data_class: Literal["public", "personal", "financial", "public-sector"] = Field(
        default="public", description="the job runs only at sites certified for this data class"
    )
    sites: list[Ref] | None = Field(default=None, max_length=64, description="only these sites (ids)")
    regions: list[Ref] | None = Field(default=None, max_length=64, description="only sites in these regions")


class JobSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", title="accelpool job", allow_inf_nan=False, strict=True)
    name: str = Field(description="letters, digits, '-', '_', '.'; at most 100")
    program: Ref | None = Field(default=None, description="program to charge (uses your grant from it)")
    grant: Ref | None = Field(default=None, description="grant to charge")
    kind: Literal["training", "finetuning", "inference", "batch"] = "training"
    resources: Resources | list[Alternative] = Field(default_factory=Resources)
    command: Command
    env: dict[EnvName, EnvValue] = Field(
        default_factory=dict, max_length=MAX_ENV_VARS, description=f"at most {MAX_ENV_VARS} variables"
    )
    workdir: PathText | None = None
    max_run_time: float | str | None = Field(default=None, description="seconds, or e.g. '90m', '2h'")
    checkpoint_dir: PathText | None = None
    steps: float | None = Field(default=None, gt=0, le=1e15, description="total steps (optional)")
    constraints: Constraints = Field(default_factory=Constraints)
    priority: int = Field(default=0, ge=-1000, le=1000, strict=True)
    public: bool = False
    preemptible: bool = Field(
        default=False,
        description="the job checkpoints on SIGTERM and may be stopped at a lease boundary, then resumed",
    )
    grace_seconds: float = Field(
        default=30.0, ge=0, le=3600, description="seconds between the checkpoint signal and a forced stop"
    )
    faster_type: Literal["cost-neutral", "any", "never"] = Field(
        default="cost-neutral",
        description="may the pool put the job on a type faster than the scheduler chose (its grant pays "
        "that type's price): cost-neutral only where its KRW per step is not higher; any; never",
    )
    image: Ref | None = Field(
        default=None, description="OCI image to run the command in (podman); it must be on the node already"
    )
    limits: Limits = Field(default_factory=Limits)
    restart_seconds: float | None = Field(
        default=None,
        ge=0,
        le=86400,
        description="what a restart costs the job (s: start-up, reload, work since its last checkpoint); "
        "default: measured (start to first progress report), else the pool's --restart-cost",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if len(v) > MAX_NAME:
            raise ValueError(f"must be at most {MAX_NAME} characters (it has {len(v)})")
        if not _NAME.match(v):
            raise ValueError("must start with a letter or digit and use only letters, digits, '-', '_', '.'")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*\Z", k):
                raise ValueError(f"{k!r} is not a valid environment variable name")
            if k in SHELL_READONLY:  # the job's environment is exported by a shell (executors/sandbox_env.py)
                raise ValueError(
                    f"'{k}' is read-only in bash (the shell sets it itself): a job cannot set it"
                )
        return v

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and not _IMAGE.match(v):
            raise ValueError(
                "must be an image reference such as 'busybox:latest' or 'registry/name@sha256:...'"
            )
        broken = [k for k, val in (info.data.get("env") or {}).items() if "\n" in val or "\r" in val]
        if v is not None and broken:  # podman's env file holds one variable a line: the rest became others
            raise ValueError(f"a job with an image cannot have a line break in env '{broken[0]}'")
        return v

    @field_validator("max_run_time")
    @classmethod
    def _duration(cls, v: Any) -> float | None:
        return None if v is None else parse_duration(v)

    @field_validator("resources", mode="before")
    @classmethod
    def _resources(cls, v: Any) -> Any:
        if isinstance(v, list):
            if len(v) > MAX_TYPES:
                raise ValueError(f"list at most {MAX_TYPES} alternatives")
            # only well-typed counts are compared here; a count of the wrong type is the field's own error
            counts = {a.get("count", 1) for a in v if isinstance(a, dict) and type(a.get("count", 1)) is int}
            if len(counts) > 1:
                raise ValueError("every alternative must ask for the same count (a job runs on one type)")
            if not v:
                raise ValueError("list at least one alternative")
        return v

    @model_validator(mode="after")
    def _program_or_grant(self) -> JobSpec:
        if self.program is not None and self.grant is not None:
            raise ValueError("give either 'program' or 'grant', not both")
        return self

    # -- derived --------------------------------------------------------------------------------------

    def count(self) -> int:
        r = self.resources
        return r[0].count if isinstance(r, list) else r.count

    def allowed_types(self) -> list[str]:
        r = self.resources
        return [a.type for a in r] if isinstance(r, list) else r.allowed()

    def min_memory_gb(self) -> float | None:
        return None if isinstance(self.resources, list) else self.resources.min_memory_gb

    def max_run_seconds(self) -> float | None:
        return None if self.max_run_time is None else float(self.max_run_time)


def _lines(text: str) -> dict[tuple[str, ...], int]:
    """YAML line (1-based) of each key path, e.g. ('resources', 'count') -> 5."""
    out: dict[tuple[str, ...], int] = {}
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return out

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = path + (str(k.value),)
                out[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                out[path + (str(i),)] = v.start_mark.line + 1
                walk(v, path + (str(i),))

    walk(root, ())
    return out


_UNION_MEMBERS = ("function-after", "float", "str", "int", "bool", "dict")


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p in ("Resources", "list")))]
    parts = [p for p in parts if not p.startswith("list[") and p not in _UNION_MEMBERS]
    return ".".join(parts) or "(job)"


def spec_error(exc: ValidationError, *, file: str | None = None, text: str | None = None) -> InputError:
    """The first validation error as an InputError naming the field and, with ``text``, its line; an unknown
    field first, as it usually explains a missing one (``comand:`` for ``command:``: "unknown field (did you
    mean 'command'?)", not "command: Field required")."""
    errors = exc.errors()
    err = next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])
    loc = tuple(err.get("loc", ()))
    fld = _field(loc)
    line = None
    if text is not None:
        lines = _lines(text)
        path = tuple(fld.split("."))
        while path and path not in lines:
            path = path[:-1]
        line = lines.get(path)
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden" and loc:
        close = difflib.get_close_matches(str(loc[-1]), sorted(_known_fields()), n=1, cutoff=0.5)
        msg = "unknown field" + (f" (did you mean '{close[0]}'?)" if close else "")
    return InputError(msg, file=file, line=line, field=fld, value=err.get("input"))


def _known_fields() -> set[str]:
    names: set[str] = set()
    for model in (JobSpec, Resources, Alternative, Constraints):
        names.update(model.model_fields)
    return names


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str, line: int, first: int) -> None:
        super().__init__(f"duplicate key '{key}' (first on line {first})")
        self.key, self.line, self.first = key, line, first


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for k, _ in node.value:
            key = self.construct_object(k, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # the base class reports unhashable keys
            if key in seen:
                raise _DuplicateKey(str(key), k.start_mark.line + 1, seen[key])
            seen[key] = k.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


MAX_YAML_VALUES = 100_000
"""The most values a job file may stand for with its aliases expanded (``*name`` repeats what ``&name``
marks): nine nested aliases of nine items each made a 12-line file of 43 million strings, which the CLI
walked for minutes at 6 GB (a tenant's test). A job spec needs a few hundred."""


def _expanded_size(node: Any) -> int:
    """How many values ``node`` stands for once every alias is expanded, each node's size counted once; a
    recursive alias (``&a [*a]``: a node inside itself) stands for endlessly many."""
    endless = 10 * MAX_YAML_VALUES
    sizes: dict[int, int] = {}
    open_: set[int] = set()  # nodes whose children are being counted (an alias back to one is a cycle)
    stack: list[tuple[Any, bool]] = [(node, False)]
    while stack:
        n, done = stack.pop()
        if id(n) in sizes:
            continue
        kids: list[Any] = []
        if isinstance(n, yaml.MappingNode):
            kids = [c for pair in n.value for c in pair]
        elif isinstance(n, yaml.SequenceNode):
            kids = list(n.value)
        if done:
            open_.discard(id(n))
            sizes[id(n)] = min(1 + sum(sizes[id(c)] for c in kids), endless)
            continue
        if any(id(c) in open_ or c is n for c in kids):
            return endless
        open_.add(id(n))
        stack.append((n, True))
        stack.extend((c, False) for c in kids if id(c) not in sizes)
    return sizes[id(node)]


def parse_job_yaml(text: str, file: str | None = None) -> JobSpec:
    """Parse and validate a job YAML document; InputError names file, line and field."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is not None and _expanded_size(root) > MAX_YAML_VALUES:
            raise InputError(
                f"the file stands for more than {MAX_YAML_VALUES} values once its aliases (*name) are "
                "expanded: a job spec needs far fewer",
                file=file,
            )
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise InputError(str(exc), file=file, line=exc.line, field=exc.key) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}",
            file=file,
            line=None if mark is None else mark.line + 1,
        ) from exc
    if not isinstance(data, dict):
        raise InputError("a job spec must be a mapping of fields (name, resources, command, ...)", file=file)
    return parse_job_dict(data, file=file, text=text)


def parse_job_dict(data: dict[str, Any], *, file: str | None = None, text: str | None = None) -> JobSpec:
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error(exc, file=file, text=text) from exc


def job_schema() -> dict[str, Any]:
    """JSON schema of the job spec (for editors: yaml-language-server)."""
    schema = JobSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def job_schema_json() -> str:
    return json.dumps(job_schema(), indent=2, sort_keys=True)
