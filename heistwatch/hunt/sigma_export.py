"""Sigma rules converted to a SIEM's query language through the installed pySigma backends and pipelines."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sigma.exceptions import SigmaError
from sigma.plugins import InstalledSigmaPlugins
from sigma.rule import SigmaRule

from heistwatch.errors import InputError
from heistwatch.hunt.sigma_load import RuleInfo, RuleSet


@dataclass(frozen=True)
class Conversion:
    """One rule in a SIEM's query language, or why it could not be converted."""

    rule: RuleInfo
    queries: tuple[str, ...]
    error: str | None = None


@functools.cache
def _plugins() -> InstalledSigmaPlugins:
    return InstalledSigmaPlugins.autodiscover()


def targets() -> dict[str, str]:
    """The SIEM query languages installed pySigma backends convert to: name -> description."""
    return {name: str(getattr(backend, "name", name)) for name, backend in sorted(_plugins().backends.items())}


def pipelines() -> list[str]:
    """Names of the installed pySigma processing pipelines (field mappings for a SIEM's data model)."""
    return sorted(_plugins().pipelines)


def convert(
    rules: RuleSet, target: str, *, pipeline: Sequence[str] = (), output_format: str = "default"
) -> Iterator[Conversion]:
    """Each rule in the target's query language, through the named pySigma pipelines (none: Sigma's field names)."""
    backends = _plugins().backends
    if target not in backends:
        raise InputError(target, f"unknown Sigma target (installed: {', '.join(sorted(backends)) or 'none'})")
    try:
        resolved = _plugins().get_pipeline_resolver().resolve(list(pipeline), target)
    except (SigmaError, ValueError) as exc:
        raise InputError(",".join(pipeline), f"cannot use the pipeline: {exc}") from exc
    backend_class: Any = backends[target]  # pySigma types the registry's values as Backend instances
    backend = backend_class(resolved)
    if output_format not in backend.formats:
        raise InputError(output_format, f"not an output format of {target} (known: {', '.join(backend.formats)})")
    for loaded in rules.rules:
        if not isinstance(loaded.rule, SigmaRule):
            yield Conversion(loaded.info, (), "correlation rule: convert it together with the rules it names")
            continue
        try:
            queries = backend.convert_rule(copy.deepcopy(loaded.rule), output_format)
        except (SigmaError, NotImplementedError) as exc:
            yield Conversion(loaded.info, (), str(exc))
            continue
        yield Conversion(loaded.info, tuple(str(q) for q in queries))
