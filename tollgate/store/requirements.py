"""The serving requirements, locked: every package the ``serving`` extra needs, transitively, pinned to the
version installed here, where the model was trained, verified and tested. A bento (and the container image
built from it) then installs exactly those versions; a newer scikit-learn unpickling the Pipeline is not a
risk it takes."""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


class UnlockableRequirement(RuntimeError):
    """A serving requirement that is not installed here, so no version can be pinned for it."""


def locked_requirements(requirements: list[str]) -> list[str]:
    """``requirements`` and everything they need (for this interpreter and platform), as ``name==version``,
    sorted by name."""
    pinned: dict[str, str] = {}
    pending: list[tuple[Requirement, tuple[str, ...]]] = [(Requirement(text), ("",)) for text in requirements]
    while pending:
        requirement, extras = pending.pop()
        if requirement.marker is not None and not any(
            requirement.marker.evaluate({"extra": extra}) for extra in extras
        ):
            continue
        name = canonicalize_name(requirement.name)
        if name in pinned:
            continue
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError as error:
            raise UnlockableRequirement(
                f"{requirement} is a serving requirement but not installed here: `make install` installs them"
            ) from error
        pinned[name] = f"{distribution.metadata['Name']}=={distribution.version}"
        wanted = ("", *sorted(requirement.extras))
        pending += [(Requirement(text), wanted) for text in distribution.requires or []]
    return [pinned[name] for name in sorted(pinned)]
