"""Attribution benchmark: heistwatch's engine and four reference baselines on attribution-bench tasks A, B, C.

Follows the bench README protocol: per instance, every group's profile minus that instance's masked items, all 176
candidates, evidence only. Metrics are tie-aware (expected value over random tie-breaks). Brier is the multi-class
Brier score with the gold set as one class (heistwatch's unknown actor counts as a wrong class); ECE is 15-bin top-1.
Country top-1 sums probabilities per `origin_country` and picks among countries only; instances whose gold groups
have no country are left out of it (n_country says how many count); groups without a country add to no country.

heistwatch's feature weights are fitted by conditional maximum likelihood on Task C, out-of-fold (5 folds grouped by
gold group) for Task C itself and on all of Task C for Tasks A and B. By default (`--train-on loro`) the training
instances are true leave-one-report-out: the gold group's evidence items lose the citation of the report the
evidence came from (it is among their citations by construction), so the weights do not learn that artefact;
scoring always uses the protocol's profiles. Baselines: probabilities native (normalised scores or NB posterior)
and "ts" (softmax(score / T), T fitted out-of-fold the same way); the JSON reports "ts".

Run: .venv/bin/python benchmarks/attribution.py [--bench DIR] [--json] [--fit] [--train-on loro|protocol]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize

from heistwatch.attribute import DEFAULT_CALIBRATION, Calibration, build_model, compile_vocabulary
from heistwatch.attribute.bench import Bench, BenchGroup, Instance, bench_evidence, load_bench
from heistwatch.attribute.calibrate import fit_temperature, fit_weights, probabilities, save_calibration
from heistwatch.attribute.engine import attribute
from heistwatch.attribute.features import FEATURES, FeatureStack, Vocabulary, combine, feature_stack, strength_matrix
from heistwatch.attribute.model import Profile

DEFAULT_BENCH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "attribution-bench"
PACKAGED = Path(__file__).resolve().parent.parent / "heistwatch" / "data" / "attribution-calibration.json"
BASELINES = ("jaccard", "tfidf", "nb", "nb_bg")
FOLDS = 5
L2 = 10.0
Vector = np.ndarray


@dataclass
class Scored:
    """One instance: feature sums for fitting, per-row features for scoring, baseline scores, gold indices."""

    instance: Instance
    gold: list[int]
    sums: Vector
    train_sums: Vector
    rows: Vector
    direct: Vector
    baselines: dict[str, Vector]


def profiles_for(groups: Sequence[BenchGroup], instance: Instance, minus_report: bool = False) -> list[Profile]:
    """Profiles minus the masked items; strength = number of citations; optionally minus the evidence's report."""
    evidence = set(instance.evidence)
    profiles = []
    for group in groups:
        hidden = instance.masked.get(group.group_id, frozenset())
        less = minus_report and group.group_id in instance.gold
        items = {i: float(max(len(c) - (less and i in evidence), 1)) for i, c in group.cites.items() if i not in hidden}
        profiles.append(Profile(group.group_id, group.name, items, group.country))
    return profiles


def baseline_scores(strength: Vector, rows: list[int]) -> dict[str, Vector]:
    """Jaccard, TF-IDF cosine, multinomial NB (alpha 0.1) and NB with Jelinek-Mercer (0.5) to the df background."""
    used = (strength > 0).astype(np.float64)
    sizes = used.sum(axis=1)
    frequency = used.sum(axis=0)
    hits = used[:, rows]
    union = sizes + len(rows) - hits.sum(axis=1)
    idf = np.log(len(used) / np.maximum(frequency, 1)) * (frequency > 0)
    norms = np.sqrt((used * idf**2).sum(axis=1)) * math.sqrt(float((idf[rows] ** 2).sum()))
    background = frequency / max(frequency.sum(), 1)
    share = np.divide(hits, sizes[:, None], out=np.zeros_like(hits), where=sizes[:, None] > 0)
    seen = frequency[rows] > 0  # an item no profile holds has no background and tells the actors apart not at all
    nb_bg = np.log(0.5 * share[:, seen] + 0.5 * background[rows][seen]).sum(axis=1)
    return {
        "jaccard": np.divide(hits.sum(axis=1), union, out=np.zeros(len(used)), where=union > 0),
        "tfidf": np.divide(hits @ idf[rows] ** 2, norms, out=np.zeros(len(used)), where=norms > 0),
        "nb": np.log((hits + 0.1) / (sizes[:, None] + 0.1 * used.shape[1])).sum(axis=1),
        "nb_bg": nb_bg,
    }


def prepare(bench: Bench, vocab: Vocabulary, calibration: Calibration, instance: Instance, loro: bool) -> Scored:
    """Everything one instance needs, computed once from its own masked profiles."""
    profiles = profiles_for(bench.groups, instance)
    rows = sorted({vocab.index[i] for i in instance.evidence if i in vocab.index})
    smoothing = (calibration.lam, calibration.background_prior)
    stack = feature_stack(vocab, profiles, *smoothing, rows=rows)
    sums = stack.values.sum(axis=1).T
    train = sums
    if loro:
        train = (
            feature_stack(vocab, profiles_for(bench.groups, instance, True), *smoothing, rows=rows).values.sum(axis=1).T
        )
    ids = [g.group_id for g in bench.groups]
    return Scored(
        instance=instance,
        gold=[ids.index(g) for g in instance.gold if g in ids],
        sums=sums,
        train_sums=train,
        rows=stack.values,
        direct=stack.direct,
        baselines=baseline_scores(strength_matrix(profiles, vocab.index), rows),
    )


def engine_scores(item: Scored, weights: Vector) -> Vector:
    """heistwatch's log-likelihood ratios for one instance, exactly as the engine combines features."""
    scores: Vector = combine(FeatureStack(values=item.rows, direct=item.direct), weights).sum(axis=0)
    return scores


def fold_of(group_id: str, salt: str = "") -> int:
    """The fold of a gold group (stable hash, so folds are grouped by gold group)."""
    return int(hashlib.sha256((salt + group_id).encode()).hexdigest(), 16) % FOLDS


def fit(items: Sequence[Scored], calibration: Calibration) -> Calibration:
    """Weights fitted on the instances, then a temperature fitted on their out-of-fold scores (nested)."""
    weights = _weights(items)
    inner = [(engine_scores(i, w), i.gold) for w, i in out_of_fold(items, _weights, salt="inner") if i.gold]
    named = {name: float(w) for name, w in zip(FEATURES, weights, strict=True)}
    return replace(calibration, weights=named, temperature=fit_temperature(inner, calibration))


def _weights(items: Sequence[Scored]) -> Vector:
    """Feature weights fitted on the instances' training feature sums."""
    return fit_weights([(i.train_sums, i.gold) for i in items if i.gold], L2)


def out_of_fold(
    items: Sequence[Scored], fitter: Callable[[Sequence[Scored]], Any], salt: str = ""
) -> Iterator[tuple[Any, Scored]]:
    """Each instance with a model fitted on the other folds."""
    folds = [fold_of(i.instance.gold[0], salt) for i in items]
    for k in range(FOLDS):
        train = [i for i, f in zip(items, folds, strict=True) if f != k]
        model = fitter(train) if train else None
        yield from ((model, i) for i, f in zip(items, folds, strict=True) if f == k)


def rank_stats(scores: Vector, gold: Sequence[int]) -> tuple[float, float, float, float]:
    """Tie-aware top-1, top-3, top-10 and reciprocal rank of the best gold candidate."""
    if not gold:
        return 0.0, 0.0, 0.0, 0.0
    best = scores[list(gold)].max()
    better = int((scores > best).sum())
    tied_gold = int((scores[list(gold)] == best).sum())
    tied = int((scores == best).sum())
    top1, top3, top10 = (_top(better, tied, tied_gold, k) for k in (1, 3, 10))
    return top1, top3, top10, _rr(better, tied, tied_gold)


def _top(better: int, tied: int, tied_gold: int, k: int) -> float:
    """Chance that one of the tied gold candidates lands within the top k under random tie-breaking."""
    slots = k - better
    if slots <= 0:
        return 0.0
    if slots >= tied:
        return 1.0
    miss = math.comb(tied - tied_gold, slots) / math.comb(tied, slots)
    return 1.0 - miss


def _rr(better: int, tied: int, tied_gold: int) -> float:
    """Expected reciprocal rank of the first gold candidate among `tied` under random tie-breaking."""
    others = tied - tied_gold
    total = 0.0
    for position in range(others + 1):
        ways = math.comb(others, position) * math.factorial(position) * tied_gold * math.factorial(tied - position - 1)
        total += ways / math.factorial(tied) / (better + position + 1)
    return total


def brier(actors: Vector, unknown: float, gold: Sequence[int]) -> float:
    """Multi-class Brier with the gold set as one class."""
    mass = float(actors[list(gold)].sum())
    rest = np.delete(actors, list(gold))
    return (1.0 - mass) ** 2 + float((rest**2).sum()) + unknown**2


def ece(confidences: Sequence[float], correct: Sequence[float], bins: int = 15) -> float:
    """Expected calibration error of top-1 predictions, 15 equal-width bins."""
    conf, hit = np.array(confidences), np.array(correct)
    edges = np.minimum((conf * bins).astype(int), bins - 1)
    return float(sum(abs(conf[edges == b].sum() - hit[edges == b].sum()) for b in range(bins)) / max(len(conf), 1))


def country_top1(actors: Vector, countries: Sequence[str | None], gold: Sequence[int]) -> float | None:
    """Tie-aware top-1 over countries (probabilities summed per country); None when the gold has no country."""
    wanted = {countries[g] for g in gold} - {None}
    if not wanted:
        return None
    totals: dict[str, float] = {}
    for country, p in zip(countries, actors.tolist(), strict=True):
        if country:
            totals[country] = totals.get(country, 0.0) + p
    names = sorted(totals)
    values = np.array([totals[n] for n in names])
    return rank_stats(values, [names.index(c) for c in wanted if c in names])[0]


def metrics(
    results: Sequence[tuple[Vector, Vector, float, Sequence[int]]], countries: Sequence[str | None]
) -> dict[str, Any]:
    """Task metrics from (ranking scores, actor probabilities, unknown probability, gold) per instance."""
    ranks = np.array([rank_stats(s, g) for s, _, _, g in results])
    country = [country_top1(p, countries, g) for _, p, _, g in results]
    known = [c for c in country if c is not None]
    return {
        "n": len(results),
        "top1": float(ranks[:, 0].mean()),
        "top3": float(ranks[:, 1].mean()),
        "top10": float(ranks[:, 2].mean()),
        "mrr": float(ranks[:, 3].mean()),
        "brier": float(np.mean([brier(p, u, g) for _, p, u, g in results])),
        "ece": ece([float(p.max()) for _, p, _, _ in results], list(ranks[:, 0])),
        "country_top1": float(np.mean(known)) if known else 0.0,
        "n_country": len(known),
    }


def heistwatch_results(items: Sequence[Scored], calibration: Calibration) -> list[Any]:
    """(scores, probabilities, unknown, gold) per instance for one calibration."""
    out = []
    for item in items:
        scores = engine_scores(item, np.array(calibration.vector()))
        actors, unknown = probabilities(scores, calibration)
        out.append((scores, actors, unknown, item.gold))
    return out


def native(name: str, scores: Vector) -> Vector:
    """A baseline's own probabilities: normalised scores (Jaccard, TF-IDF) or the NB posterior."""
    if name in ("jaccard", "tfidf"):
        total = scores.sum()
        return scores / total if total > 0 else np.full(len(scores), 1 / len(scores))
    exp = np.exp(scores - scores.max())
    return np.asarray(exp / exp.sum())


def softmax(scores: Vector, temperature: float) -> Vector:
    """softmax(scores / temperature)."""
    z = scores / temperature
    exp = np.exp(z - z.max())
    return np.asarray(exp / exp.sum())


def baseline_temperature(pairs: Sequence[tuple[Vector, Sequence[int]]]) -> float:
    """The temperature minimising the negative log mass on the gold set."""

    def loss(log_t: float) -> float:
        return -sum(math.log(max(float(softmax(s, math.exp(log_t))[list(g)].sum()), 1e-300)) for s, g in pairs)

    result = optimize.minimize_scalar(loss, bounds=(-6.0, 6.0), method="bounded")
    return math.exp(float(result.x))


def baseline_results(items: Sequence[Scored], name: str, calibrated: bool) -> list[Any]:
    """(scores, probabilities, 0, gold) per instance for one baseline, native or temperature-scaled out-of-fold."""
    if not calibrated:
        return [(i.baselines[name], native(name, i.baselines[name]), 0.0, i.gold) for i in items]
    fitter = lambda train: baseline_temperature([(i.baselines[name], i.gold) for i in train if i.gold])  # noqa: E731
    return [
        (i.baselines[name], softmax(i.baselines[name], t or 1.0), 0.0, i.gold) for t, i in out_of_fold(items, fitter)
    ]


def per_second(bench: Bench, vocab: Vocabulary, calibration: Calibration, repeats: int = 3) -> tuple[float, float]:
    """Median attributions/second of the engine and of a pure-Python NB-bg anchor, over Task C's evidence."""
    instances = [i for task in ("C", "A", "B") for i in bench.tasks.get(task, ())][:1000]
    empty = Instance("", "", (), (), {})
    profiles = profiles_for(bench.groups, empty)
    model = build_model(vocab, profiles, calibration)
    evidence = [bench_evidence(i) for i in instances]
    anchor = _anchor(profiles)
    return _rate(lambda: [attribute(e, model) for e in evidence], len(evidence), repeats), _rate(
        lambda: [anchor(i.evidence) for i in instances], len(instances), repeats
    )


def _rate(run: Callable[[], object], count: int, repeats: int) -> float:
    """Median calls per second over `repeats` passes."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def _anchor(profiles: Sequence[Profile]) -> Callable[[Sequence[str]], list[tuple[float, str]]]:
    """A pure-Python NB with Jelinek-Mercer smoothing (the README's reference scorer kind), for the speed ratio."""
    frequency: dict[str, int] = {}
    for p in profiles:
        for i in p.items:
            frequency[i] = frequency.get(i, 0) + 1
    total = sum(frequency.values())

    def run(evidence: Sequence[str]) -> list[tuple[float, str]]:
        ranked = []
        for p in profiles:
            size = max(len(p.items), 1)
            s = sum(math.log(0.5 * (i in p.items) / size + 0.5 * frequency.get(i, 0) / total + 1e-12) for i in evidence)
            ranked.append((s, p.actor_id))
        return sorted(ranked, reverse=True)

    return run


def run_task(bench: Bench, vocab: Vocabulary, calibration: Calibration, task: str, loro: bool) -> list[Scored]:
    """Prepare every instance of a task."""
    return [prepare(bench, vocab, calibration, i, loro and task == "C") for i in bench.tasks[task]]


def evaluate(bench: Bench, train_on: str, base: Calibration) -> tuple[dict[str, Any], Calibration | None]:
    """All metrics for all tasks present, and the weights fitted on all of Task C (if present)."""
    vocab = compile_vocabulary(bench.items)
    countries = [g.country for g in bench.groups]
    report: dict[str, Any] = {"heistwatch": {}, "baselines": {b: {} for b in BASELINES}, "native": {}}
    fitted = None
    if "C" in bench.tasks:
        items = run_task(bench, vocab, base, "C", train_on == "loro")
        fitted = fit(items, base)
        oof = list(out_of_fold(items, lambda train: fit(train, base)))
        report["heistwatch"]["C"] = metrics([r for c, i in oof for r in heistwatch_results([i], c)], countries)
        _baselines(report, items, "C", countries)
    for task in ("A", "B"):
        if task in bench.tasks:
            items = run_task(bench, vocab, base, task, False)
            report["heistwatch"][task] = metrics(heistwatch_results(items, fitted or base), countries)
            _baselines(report, items, task, countries)
    return report, fitted


def _baselines(report: dict[str, Any], items: Sequence[Scored], task: str, countries: Sequence[str | None]) -> None:
    """Add the four baselines' metrics (temperature-scaled and native) for one task."""
    for name in BASELINES:
        report["baselines"][name][task] = metrics(baseline_results(items, name, True), countries)
        report["native"].setdefault(name, {})[task] = metrics(baseline_results(items, name, False), countries)


def record(fitted: Calibration, bench: Path, train_on: str, n: int) -> Calibration:
    """The calibration to package, rounded, with a record of what it was fitted on."""
    manifest = (
        json.loads((bench / "manifest.json").read_text(encoding="utf-8")) if (bench / "manifest.json").exists() else {}
    )
    return replace(
        fitted,
        weights={name: round(w, 6) for name, w in fitted.weights.items()},
        temperature=round(fitted.temperature, 6),
        fitted_on={
            "benchmark": str(manifest.get("benchmark", bench.name)),
            "task": "C",
            "instances": n,
            "task_c_sha256": str(manifest.get("sha256", {}).get("task_c.jsonl", "")),
            "train_on": train_on,
            "l2": L2,
            "method": "weights: conditional max. likelihood over all candidates, L2; temperature: nested out-of-fold",
        },
    )


LABELS = {"A": "A", "B": "B-hidden", "C": "C"}


def render(report: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    head = "| set | method | n | top-1 | top-3 | top-10 | MRR | Brier | ECE | country top-1 (n) |"
    lines = [head, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for task in ("A", "B", "C"):
        rows = [("heistwatch", report["heistwatch"].get(task))]
        rows += [(f"{b} ts / native", report["baselines"][b].get(task)) for b in BASELINES]
        for name, m in rows:
            if m is None:
                continue
            nat = report["native"].get(name.split()[0], {}).get(task)
            brier = f"{m['brier']:.2f}" + (f" / {nat['brier']:.2f}" if nat else "")
            ece_ = f"{m['ece']:.2f}" + (f" / {nat['ece']:.2f}" if nat else "")
            lines.append(
                f"| {LABELS[task]} | {name} | {m['n']} | {m['top1']:.3f} | {m['top3']:.3f} | {m['top10']:.3f} | "
                f"{m['mrr']:.3f} | {brier} | {ece_} | {m['country_top1']:.3f} ({m['n_country']}) |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print a table or JSON; with --fit, write the packaged calibration."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bench", type=Path, default=DEFAULT_BENCH)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--fit", action="store_true", help=f"write the calibration fitted on all of Task C to {PACKAGED}"
    )
    parser.add_argument("--train-on", choices=("loro", "protocol"), default="loro")
    args = parser.parse_args(argv)
    bench = load_bench(args.bench)
    base = DEFAULT_CALIBRATION
    report, fitted = evaluate(bench, args.train_on, base)
    final = base if fitted is None else record(fitted, args.bench, args.train_on, len(bench.tasks["C"]))
    engine_rate, anchor_rate = per_second(bench, compile_vocabulary(bench.items), final)
    report["per_second"] = {"heistwatch": round(engine_rate), "anchor_pure_python_nb_bg": round(anchor_rate)}
    if args.fit and fitted is not None:
        save_calibration(final, PACKAGED)
        print(f"wrote {PACKAGED}", file=sys.stderr)
    if args.json:
        report.pop("native")
        for m in [*report["heistwatch"].values(), *(t for b in report["baselines"].values() for t in b.values())]:
            m.pop("n_country")
        print(json.dumps(report, indent=1, sort_keys=True))
    else:
        print(render(report))
        print(f"\nfitted on all of C: weights {final.weights}, temperature {final.temperature}")
        ratio = engine_rate / anchor_rate
        print(
            f"attributions/s (median of 3, one process): heistwatch {engine_rate:,.0f}; "
            f"pure-Python NB-bg anchor {anchor_rate:,.0f}; ratio {ratio:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
