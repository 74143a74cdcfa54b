"""`hub`: brings a Hugging Face Hub repository (a model or a dataset) into the local Hub cache and
says where it is and which commit it holds.

Everything goes through the Hub's own client library (``huggingface_hub.snapshot_download``), so
its cache (``HF_HOME``), its offline switch (``HF_HUB_OFFLINE``), its token (``HF_TOKEN`` or
``huggingface-cli login``) and revisions behave as everywhere else; nothing here speaks HTTP.
Download progress arrives as ``progress`` events (bytes).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import events
from .config import HubResolveConfig
from .errors import EngineError
from .signals import StopRequested


def _progress_bar(repo: str):
    """A tqdm class that reports the snapshot's byte progress as eaglet events."""
    from tqdm.auto import tqdm

    class Progress(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True  # nothing on the terminal: the events carry it
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            out = super().update(n)
            if self.unit == "B":
                events.progress("hub", float(self.n), float(self.total) if self.total else None, "byte", repo)
            return out

    return Progress


def resolve(cfg: HubResolveConfig) -> dict[str, Any]:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    name = f"{cfg.repo}{'@' + cfg.revision if cfg.revision else ''}"
    kind = "dataset" if cfg.repo_type == "dataset" else "model"
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(os.environ.get("HF_HOME", os.path.join(Path.home(), ".cache", "huggingface")), "hub")
    try:
        path = snapshot_download(repo_id=cfg.repo, revision=cfg.revision, repo_type=cfg.repo_type, tqdm_class=_progress_bar(name))
    except GatedRepoError as e:
        raise EngineError(
            f"{kind} {name} on the Hugging Face Hub is gated: its files need an accepted licence and a token",
            code="EAGLET_HUB_GATED",
            hint=f"accept the terms on https://huggingface.co/{'datasets/' if kind == 'dataset' else ''}{cfg.repo}, then set HF_TOKEN (or run `huggingface-cli login`)",
        ) from e
    except RepositoryNotFoundError as e:
        raise EngineError(
            f"no {kind} {cfg.repo} on the Hugging Face Hub (or it is private and no token was sent)",
            code="EAGLET_HUB_NOT_FOUND",
            hint="check the id (org/name); for a private repository set HF_TOKEN; a local folder of that name must exist to be used instead",
        ) from e
    except RevisionNotFoundError as e:
        raise EngineError(
            f"{kind} {cfg.repo} has no revision {cfg.revision!r}",
            code="EAGLET_HUB_REVISION",
            hint="name a branch, tag or commit of the repository (org/name@revision)",
        ) from e
    except LocalEntryNotFoundError as e:
        why = "HF_HUB_OFFLINE is set" if offline else "the Hub could not be reached"
        raise EngineError(
            f"{kind} {name} is not in the local Hub cache ({cache}) and {why}",
            code="EAGLET_HUB_OFFLINE",
            hint=f"download it once with network access (`huggingface-cli download {'--repo-type dataset ' if kind == 'dataset' else ''}{cfg.repo}`), point HF_HOME at a cache that holds it, or pass a local folder",
        ) from e
    snapshot = Path(path)
    # The snapshot folder of the Hub cache is named after the commit it holds.
    return {
        "repo": cfg.repo,
        "repoType": cfg.repo_type,
        **({"requested": cfg.revision} if cfg.revision else {}),
        "revision": snapshot.name,
        "path": str(snapshot),
    }


def run(cfg: HubResolveConfig, stop: StopRequested) -> dict[str, Any]:  # noqa: ARG001 - a download is not stoppable midway
    return resolve(cfg)
