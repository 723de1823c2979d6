"""Plain-text renderings for the terminal and for text files the demo writes."""

from __future__ import annotations

from collections import defaultdict

from heistwatch.kb.resolve import Resolution, Statement
from heistwatch.model import SourceStats


def render_resolution(res: Resolution, source_names: dict[str, str]) -> str:
    """What each source says about a name, the combined view and where sources disagree."""
    lines = [
        f"{res.query}: {len(res.matches)} records, {len(res.statements)} statements",
        "",
        "Combined view",
    ]
    for level in ("group", "umbrella", "country"):
        view = getattr(res, level)
        values = (
            "; ".join(
                f"{label} ({', '.join(source_names.get(s, s) for s in srcs)})" for label, srcs in view.values.items()
            )
            or "-"
        )
        lines.append(f"  {level:<9} {view.agreement:<9} {values}")
    if res.aliases.values:
        lines.append(
            "  aliases   "
            + "; ".join(
                f"{label} ({', '.join(source_names.get(s, s) for s in srcs)})"
                for label, srcs in res.aliases.values.items()
            )
        )
    if res.disagreements:
        lines += ["", "Where sources disagree", *(f"  {d}" for d in res.disagreements)]
    lines += ["", "What each source says"]
    by_source: defaultdict[str, list[Statement]] = defaultdict(list)
    for statement in res.statements:
        by_source[statement.source_name].append(statement)
    for name in sorted(by_source):
        lines.append(f"  {name}")
        for st in by_source[name]:
            words = f", {st.likelihood}" if st.likelihood else ""
            said = f' ("{st.said}")' if st.said and st.said != st.relation else ""
            date = f", {st.date}" if st.date else ""
            lines.append(f"    {st.subject} {st.relation} {st.object}{words}{said}{date}")
            if st.reference:
                lines.append(f"      {st.reference}")
    for title, usages in (("Techniques", res.techniques), ("Software", res.software)):
        if usages:
            lines += ["", f"{title} ({len(usages)})"]
            lines += [f"  {u.external_id or '-':<10} {u.name}  [{', '.join(u.sources)}]" for u in usages]
    return "\n".join(lines)


def render_stats(stats: list[SourceStats]) -> str:
    """A table of what each source contributed."""
    header = f"{'source':<40} {'version':<10} {'objects':>8} {'claims':>7} {'relations':>9} {'indicators':>10}"
    rows = [header, "-" * len(header)]
    for st in stats:
        rows.append(
            f"{st.source.key:<40} {st.source.version or '-':<10} {sum(st.objects.values()):>8}"
            f" {st.claims:>7} {st.relationships:>9} {st.indicators:>10}"
        )
    totals = [
        sum(sum(s.objects.values()) for s in stats),
        sum(s.claims for s in stats),
        sum(s.relationships for s in stats),
        sum(s.indicators for s in stats),
    ]
    rows.append(f"{'total':<40} {'':<10} {totals[0]:>8} {totals[1]:>7} {totals[2]:>9} {totals[3]:>10}")
    return "\n".join(rows)
