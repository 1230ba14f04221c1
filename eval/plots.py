"""The figures of a `cited eval` report: hit@k and recall@k curves, overall and per kind, and per-kind bars.

The numbers come from the report's own records and aggregates (nothing is re-scored), so a curve at
k = 1, 3, 5, 10 is the table's hit@k. matplotlib is imported only when a figure is drawn, through its
object-oriented API on the Agg canvas: no window, no global backend switch, and `cited --help` never
pays for the import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.questions import KINDS

__all__ = ["BAR_METRICS", "PLOTS", "curves", "write_plots"]

OVERALL = "overall"
# file name → alt text; the Markdown report embeds them in this order
PLOTS = {
    "hit_at_k.png": "hit@k by kind",
    "recall_at_k.png": "recall@k by kind",
    "by_kind.png": "metrics by kind",
}
BAR_METRICS = ("hit@1", "hit@5", "recall@10", "mrr@10", "ndcg@10")
_SIZE_IN = (7.0, 4.2)  # figure size in inches, at _DPI: 700 × 420 pixels
_DPI = 100
# One fixed colour per kind (colour-blind-safe Okabe–Ito), so a kind looks the same in every figure and report.
_COLOURS = {"factoid": "#0072B2", "paraphrase": "#E69F00", "alias": "#009E73", "multi-source": "#CC79A7"}
_OTHER = ("#56B4E9", "#D55E00", "#F0E442", "#999999")


def _answerable(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in records if r.get("metrics") is not None]


def _groups(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Overall first, then each kind in the order of KINDS (the order of the report's tables)."""
    groups: dict[str, list[Mapping[str, Any]]] = {OVERALL: list(records)}
    order = {kind: i for i, kind in enumerate(KINDS)}
    for record in sorted(records, key=lambda r: order.get(r["kind"], len(order))):
        groups.setdefault(record["kind"], []).append(record)
    return groups


def _hit(record: Mapping[str, Any], k: int) -> float:
    rank = record.get("first_relevant_rank")
    return 1.0 if rank is not None and rank <= k else 0.0


def _recall(record: Mapping[str, Any], k: int) -> float:
    # as the runner scores it: gold quotes first covered within the top k / gold quotes
    gold = record["gold"]
    return sum(1 for g in gold if g["found_rank"] is not None and g["found_rank"] <= k) / len(gold)


def curves(records: Iterable[Mapping[str, Any]], top_k: int) -> dict[str, dict[str, Any]]:
    """hit@k and recall@k for k = 1 … top_k, averaged over the answerable questions, overall and per kind.

    Returns ``{group: {"n": questions, "hit": [hit@1, …], "recall": [recall@1, …]}}``, overall first.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    answerable = _answerable(records)
    if not answerable:
        raise ValueError("no answerable question to plot")
    ks = range(1, top_k + 1)
    return {
        name: {
            "n": len(members),
            "hit": [sum(_hit(r, k) for r in members) / len(members) for k in ks],
            "recall": [sum(_recall(r, k) for r in members) / len(members) for k in ks],
        }
        for name, members in _groups(answerable).items()
    }


def _colour(name: str, position: int) -> str:
    return "#000000" if name == OVERALL else _COLOURS.get(name, _OTHER[position % len(_OTHER)])


def _figure() -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=_SIZE_IN, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: Path) -> None:
    # no "Software" entry: the file depends only on the numbers and the matplotlib version
    figure.savefig(path, format="png", dpi=_DPI, metadata={"Software": None})


def _curve_plot(data: Mapping[str, Mapping[str, Any]], field: str, title: str, path: Path) -> None:
    figure = _figure()
    axes = figure.add_subplot()
    top_k = len(next(iter(data.values()))[field])
    ks = list(range(1, top_k + 1))
    for position, (name, row) in enumerate(data.items()):
        overall = name == OVERALL
        axes.plot(
            ks, row[field], label=f"{name} (n={row['n']})", color=_colour(name, position),
            linewidth=2.6 if overall else 1.4, marker="o", markersize=3.5 if overall else 2.5, zorder=3 if overall else 2,
        )
    axes.set_xlim(0.5, top_k + 0.5)
    axes.set_ylim(0, 1.04)
    axes.set_xticks(ks if top_k <= 20 else [k for k in ks if k == 1 or k % 5 == 0])
    axes.set_xlabel("k (passages read)")
    axes.set_ylabel(field if field == "recall" else "hit")
    axes.set_title(title, fontsize=10)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    _save(figure, path)


def _bar_plot(aggregates: Mapping[str, Any], path: Path) -> None:
    rows = [(OVERALL, aggregates[OVERALL]), *aggregates["by_kind"].items()]
    figure = _figure()
    axes = figure.add_subplot()
    width = 0.8 / len(rows)
    for position, (name, row) in enumerate(rows):
        xs = [i + (position - (len(rows) - 1) / 2) * width for i in range(len(BAR_METRICS))]
        axes.bar(xs, [row[m] for m in BAR_METRICS], width, label=f"{name} (n={row['n']})", color=_colour(name, position))
    axes.set_xticks(range(len(BAR_METRICS)), BAR_METRICS)
    axes.set_ylim(0, 1.04)
    axes.set_ylabel("mean over answerable questions")
    axes.set_title("Retrieval metrics by question kind", fontsize=10)
    axes.grid(True, axis="y", alpha=0.3)
    figure.legend(loc="outside lower center", ncols=min(len(rows), 5), fontsize=8)
    _save(figure, path)


def write_plots(records: Sequence[Mapping[str, Any]], aggregates: Mapping[str, Any], top_k: int, out: Path) -> list[Path]:
    """Write the PNGs of :data:`PLOTS` into ``out`` (created if needed); returns their paths in that order."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = curves(records, top_k)
    paths = [out / name for name in PLOTS]
    hit, recall, bars = paths
    _curve_plot(data, "hit", "hit@k: share of answerable questions with a relevant passage in the top k", hit)
    _curve_plot(data, "recall", "recall@k: share of each question's gold quotes found in the top k", recall)
    _bar_plot(aggregates, bars)
    return paths
