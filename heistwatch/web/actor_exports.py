"""One actor as a download: a STIX 2.1 bundle, a MISP event or an ATT&CK Navigator layer, cut at a user's clearance.

Each is the `heistwatch export` function run on a `ReaderView`, so only what the user may read goes in, with its
effective marking, and the export's own TLP ceiling is the user's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from heistwatch.attribute.model import Profile
from heistwatch.errors import NotFoundError
from heistwatch.kb.seed.attack import attack_version
from heistwatch.model import KBObject, ObjectType
from heistwatch.share.feeds import ActorLinks
from heistwatch.share.navigator import actor_layer
from heistwatch.share.stix import export_bundle
from heistwatch.web.view import ReaderView, user_ceiling

FORMATS = ("stix", "misp", "navigator")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Download:
    """A file to send: its name, media type, text, and what it holds (for the audit log)."""

    filename: str
    media_type: str
    text: str
    detail: dict[str, Any]


def actor_download(view: ReaderView, actor_id: str, fmt: str) -> Download:
    """The actor in format `fmt` (one of FORMATS); NotFoundError if the user may not see the actor."""
    actor = view.get(actor_id)
    if actor is None or actor.type is not ObjectType.INTRUSION_SET:
        raise NotFoundError(f"actor {actor_id}")
    stem = _SAFE.sub("-", actor.name).strip("-") or "actor"
    ceiling = user_ceiling(view.user)
    if fmt == "stix":
        bundle = actor_bundle(view, actor)
        detail = {"objects": len(bundle["objects"]), "ceiling": ceiling.value}
        return Download(f"{stem}.stix.json", "application/stix+json;version=2.1", json.dumps(bundle, indent=1), detail)
    if fmt == "misp":
        from heistwatch.share.misp import actor_event, event_json, event_summary  # pymisp's import costs seconds

        event = actor_event(view, actor.name, tlp_max=ceiling)
        detail = {**event_summary(event), "ceiling": ceiling.value}
        return Download(f"{stem}.misp.json", "application/json", event_json(event), detail)
    layer = actor_layer(_profile(view, actor), attack_version())
    detail = {"techniques": len(layer["techniques"]), "ceiling": ceiling.value}
    return Download(f"{stem}.navigator.json", "application/json", json.dumps(layer, indent=1), detail)


def actor_bundle(view: ReaderView, actor: KBObject) -> dict[str, Any]:
    """The actor, what it uses, the records claims tie to it (so the claims come along) and its indicators."""
    uses = view.relationships(from_ids=[actor.id], type="uses")
    claims = view.claims(about=[actor.id])
    links = ActorLinks(view)
    indicators = [i.id for i in view.indicators() if actor.id in links.actors(i)]
    ids = {actor.id, *(r.target_ref for r in uses), *(c.subject_id for c in claims), *(c.object_id for c in claims)}
    return export_bundle(view, ids=[*ids, *indicators])


def _profile(view: ReaderView, actor: KBObject) -> Profile:
    """The actor's techniques as a profile, from the `uses` links the user may read (any source, not only ATT&CK)."""
    uses = view.relationships(from_ids=[actor.id], type="uses")
    techniques = [o for o in view.objects(ids={r.target_ref for r in uses}) if o.type is ObjectType.ATTACK_PATTERN]
    return Profile(actor.external_id or actor.id, actor.name, {t.external_id: 1.0 for t in techniques if t.external_id})
