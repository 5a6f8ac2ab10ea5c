"""The HTML report's counterexample gallery: which counterexamples to show, each as a card.

At most `GALLERY_PER_MODEL` cards per model and `GALLERY_TOTAL` in the whole report, so the
page stays small; pictures are drawn from the saved `.npz` files (`images.py`) and cached per
file. A missing or damaged file gives a card that says so, never a broken report.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from robustcheck.report import fmt_num, fmt_pct, norm_name

if TYPE_CHECKING:
    from robustcheck.record import Counterexample, InputInfo, ModelRecord

GALLERY_PER_MODEL = 12
GALLERY_TOTAL = 60


def model_gallery(model: ModelRecord, inp: InputInfo | None, budget: list[int], base_dir: Path | None,
                  pictures: dict[tuple[Any, ...], Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """(cards, notes) of one model: up to GALLERY_PER_MODEL cards, smallest distortion first,
    taking turns between properties, within what is left of the report's `budget[0]` (which
    this lowers). The same adversarial example found for several properties is one card
    naming them all; the notes say how many were left out and why.
    """
    chosen = _choose(model.counterexamples, min(GALLERY_PER_MODEL, budget[0]))
    budget[0] -= len(chosen)
    layout = None if inp is None else inp.layout
    input_range = inp.range if inp is not None and len(inp.range) == 2 else None
    cards = [_card(same, layout, input_range, base_dir, pictures) for same in chosen]
    notes = []
    left = len(model.counterexamples) - sum(len(same) for same in chosen)
    if left > 0:
        why = (f"the report shows at most {GALLERY_PER_MODEL} per model" if len(chosen) == GALLERY_PER_MODEL
               else f"the report shows at most {GALLERY_TOTAL} in all")
        notes.append(f"{left} more counterexample{'s' if left != 1 else ''} not shown ({why}, the smallest "
                     "distortions first); every one is listed in robustcheck.json with its .npz file.")
    return cards, notes


def _choose(counterexamples: list[Counterexample], limit: int) -> list[list[Counterexample]]:
    if limit <= 0:
        return []
    same: dict[tuple[Any, ...], list[Counterexample]] = {}
    for c in counterexamples:
        key = (c.attack, c.norm, c.dataset_index, c.target, c.adv_label, round(c.distance, 6))
        same.setdefault(key, []).append(c)
    groups: dict[str, list[list[Counterexample]]] = {}
    for entry in same.values():
        groups.setdefault(entry[0].property, []).append(entry)
    queues = [sorted(g, key=lambda e: e[0].distance) for g in groups.values()]
    out: list[list[Counterexample]] = []
    while len(out) < limit and any(queues):
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    return out


def _card(same: list[Counterexample], layout: str | None, input_range: Any, base_dir: Path | None,
          pictures: dict[tuple[Any, ...], Any]) -> dict[str, Any]:
    from robustcheck.report.images import pictures_from_npz

    c = same[0]
    images = None
    problem = None
    npz = _locate(c.npz, base_dir)
    if c.npz is None:
        problem = "no .npz file was saved for this counterexample"
    elif npz is None:
        problem = f"{c.npz} not found"
    else:
        try:
            key = (str(npz), layout, None if input_range is None else tuple(input_range))
            if key not in pictures:
                pictures[key] = pictures_from_npz(npz, layout, input_range)
            pics = pictures[key]
            uris = pics.data_uris()
            images = {"original": uris["original"], "perturbation": uris["perturbation"],
                      "adversarial": uris["adversarial"], "width": pics.width, "height": pics.height,
                      "amplification": None if pics.amplification is None else f"amplified ×{pics.amplification:.2g}"}
        except Exception as exc:  # a damaged file must not cost the whole report
            problem = f"{c.npz}: cannot be drawn ({type(exc).__name__}: {exc})"
    order = ["l0", "l1", "l2", "linf"]
    distances = sorted(c.distances.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 9)
    return {
        "property": ", ".join(dict.fromkeys(x.property for x in same)), "entries": len(same),
        "attack": c.attack, "norm": norm_name(c.norm),
        "sample_index": c.sample_index, "dataset_index": c.dataset_index,
        "true_label": c.true_label, "adv_label": c.adv_label, "target": c.target,
        "confidence_true": fmt_pct(c.confidence_true), "confidence_adv": fmt_pct(c.confidence_adv),
        "distances": [(norm_name(k), fmt_num(v, 4), k == c.norm) for k, v in distances],
        "epsilon": None if c.epsilon is None else f"{c.epsilon:g}",
        "npz": c.npz, "png": c.png, "reproduce": c.reproduce, "text": c.describe(),
        "images": images, "problem": problem,
    }


def _locate(name: str | None, base_dir: Path | None) -> Path | None:
    if not name:
        return None
    path = Path(name)
    candidates = [path]
    if not path.is_absolute() and base_dir is not None:
        candidates += [base_dir / path, base_dir / path.name]
    return next((p for p in candidates if p.is_file()), None)
