"""Run records for the report tests: realistic, hostile and large, with counterexample files.

`realistic_record(tmp_path)` mirrors a CI-profile run of the shipped demo suite: three MNIST
models (the baseline passes; the two defensively distilled students fail `gradient-masking`
and one regressed against the baseline), C&W / FGSM / PGD attack records with robustness curves and
per-sample distortions, and counterexample `.npz` files made from real held-out MNIST digits
(`models/data/mnist-heldout.npz`; synthetic strokes when that file is absent). The
perturbations are synthetic (smooth, stroke-hugging, scaled to a target L2), and every
distance in the record is measured from the saved arrays, so the pictures and the numbers
agree. Plain numpy only: no model is run.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from robustcheck.figures import (
    BaselineFigures,
    CleanAccuracyFigures,
    GradientMaskingFigures,
    RobustAccuracyFigures,
    RobustPropertyFigures,
)
from robustcheck.record import (
    AttackRecord,
    BaselineDelta,
    Counterexample,
    CurvePoint,
    Distortion,
    Finding,
    InputInfo,
    ItemRecord,
    ModelRecord,
    ModelSpec,
    OutputInfo,
    ParityInfo,
    RunInfo,
    RunRecord,
)

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "models" / "data" / "mnist-heldout.npz"
EVAL = 64  # eval-set size (CI profile)
CURVE_POINTS = 25
TYPICAL = {"l0": 180.0, "l1": 9.0, "l2": 1.0, "linf": 0.35}

SCRIPT = "<script>document.title='pwned'</script>"
IMG = "<img src=x onerror=\"document.title='pwned'\">"
HOSTILE = f"{SCRIPT}{IMG}"

# Plausible confusions for MNIST adversarial examples.
CONFUSION = {0: 6, 1: 7, 2: 3, 3: 5, 4: 9, 5: 3, 6: 5, 7: 9, 8: 3, 9: 4}


def _digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    if HELDOUT.is_file():
        with np.load(HELDOUT) as data:
            return data["x"][:n].astype(np.float32), data["y"][:n].astype(np.int64)
    # Fallback: blurry strokes on 28x28 (not digits, but image-like).
    rng = np.random.default_rng(0)
    x = np.zeros((n, 1, 28, 28), np.float32)
    for k in range(n):
        for _ in range(3):
            r0, c0, r1, c1 = rng.integers(5, 23, size=4)
            for t in np.linspace(0, 1, 40):
                r, c = int(r0 + t * (r1 - r0)), int(c0 + t * (c1 - c0))
                x[k, 0, r - 1:r + 2, c - 1:c + 2] = 1.0
    return x, rng.integers(0, 10, size=n)


def _blur(a: np.ndarray) -> np.ndarray:
    p = np.pad(a, 1, mode="edge")
    return sum(p[i:i + a.shape[0], j:j + a.shape[1]] for i in range(3) for j in range(3)) / 9.0


def _perturb(x: np.ndarray, l2: float, rng: np.random.Generator) -> np.ndarray:
    """A C&W-looking perturbation of one (1, 28, 28) image with about the given L2 norm."""
    img = x[0]
    near = _blur(_blur((img > 0.3).astype(np.float64)))
    noise = _blur(rng.normal(size=img.shape)) * (0.15 + near)
    delta = noise / (np.linalg.norm(noise) + 1e-12) * l2
    adv = np.clip(img + delta, 0.0, 1.0).astype(np.float32)
    return adv[None]


def _distances(x: np.ndarray, adv: np.ndarray) -> dict[str, float]:
    d = (adv - x).ravel().astype(np.float64)
    return {"l0": float(np.count_nonzero(np.abs(d) > 1e-6)), "l1": float(np.abs(d).sum()),
            "l2": float(np.linalg.norm(d)), "linf": float(np.abs(d).max())}


def _curve(mins: list[float | None], correct: int, n: int, epsilon: float | None) -> list[CurvePoint]:
    finite = np.array([d for d in mins if d is not None])
    if epsilon is not None or not len(finite):
        acc = (correct - len(finite)) / n
        return [CurvePoint(0.0, correct / n)] + ([CurvePoint(float(epsilon), acc)] if epsilon else [])
    grid = np.linspace(0.0, float(finite.max()) * 1.05, CURVE_POINTS)
    return [CurvePoint(float(e), (correct - int((finite <= e).sum())) / n) for e in grid]


def _attack(label: str, norm: str, params: dict, mins: list[float | None], correct: int,
            epsilon: float | None = None, wall: float = 1.0) -> AttackRecord:
    ok = [d for d in mins if d is not None]
    dist = []
    for n in ("l0", "l1", "l2", "linf"):
        if not ok:
            dist.append(Distortion(n, 0, None, None, None, None))
            continue
        # Other norms of the same perturbations, at the ratios typical of MNIST C&W examples.
        vals = np.array(ok) * TYPICAL[n] / TYPICAL[norm]
        if n == "l0":
            vals = np.minimum(np.round(vals), 784)
        stats = (vals.mean(), np.median(vals), vals.min(), vals.max())
        dist.append(Distortion(n, len(ok), *(float(v) for v in stats)))
    return AttackRecord(attack=label, norm=norm, params=params, samples=len(mins),
                        success_rate=len(ok) / max(1, len(mins)),
                        wall_time_s=wall, replica_disagreements=0, epsilon=epsilon, distortion=dist,
                        min_distances=mins, curve=_curve(mins, correct, EVAL, epsilon))


def _mins(rng: np.random.Generator, n: int, median: float, sigma: float, success: float) -> list[float | None]:
    out: list[float | None] = []
    for _ in range(n):
        out.append(float(median * math.exp(sigma * rng.normal())) if rng.random() < success else None)
    return out


def _bounded(rng: np.random.Generator, n: int, success: float, eps: float) -> list[float | None]:
    return [float(eps * rng.uniform(0.55, 1.0)) if rng.random() < success else None for _ in range(n)]


def _config(name: str, min_clean: float) -> dict:
    return {
        "dataset": {"path": "data/mnist-heldout.npz", "labels": None, "scale": None},
        "input_range": [0.0, 1.0], "layout": "NCHW", "output": None, "samples": None,
        "min_clean_accuracy": min_clean, "masking": "fail", "baseline_tolerance": 0.05,
        "checks": [
            {"id": "robust[cw-l2@0.25]", "type": "robust", "attack": "cw-l2", "epsilon": 0.25, "min": None,
             "targeted": False, "params": {}},
            {"id": "robust-accuracy[cw-l2@1]", "type": "robust-accuracy", "attack": "cw-l2", "epsilon": 1.0,
             "min": 0.5, "targeted": False, "params": {}},
            {"id": "robust-accuracy[fgsm-linf@0.3]", "type": "robust-accuracy", "attack": "fgsm-linf",
             "epsilon": 0.3, "min": 0.05, "targeted": False, "params": {}},
        ],
        "attacks": {},
        "source": "models/robustcheck.toml" + (f' [models."{name}"]' if name.startswith("distilled") else ""),
    }


def _spec(name: str, softmax: bool = False) -> ModelSpec:
    return ModelSpec(
        input=InputInfo(name="input", shape=["N", 1, 28, 28], dtype="float32", layout="NCHW", range=[0.0, 1.0]),
        output=OutputInfo(name="/fc3/Gemm_output_0" if softmax else "logits",
                          kind="cut-softmax" if softmax else "logits", classes=10,
                          cut_node="/Softmax" if softmax else None),
        replica="torch",
        parity=ParityInfo(samples=16, source="dataset", max_abs_diff=7.6e-06 if name == "baseline" else 7.3e-04,
                          max_rel_diff=1e-7, argmax_agreement=1.0, passed=True),
        warnings=["trailing Softmax node '/Softmax' cut; attacking its input '/fc3/Gemm_output_0'"] if softmax else [],
    )


MASKING_FINDINGS = [
    Finding(
        id="vanishing-softmax-gradients", severity="error",
        title="Cross-entropy gradients are exactly zero on 99.5% of correctly classified samples",
        evidence={"zero_gradient_fraction": 0.995, "samples": 64, "median_top1_top2_logit_margin": 1013.6,
                  "mean_abs_logit": 558.8, "baseline_mean_abs_logit": 6.8},
        explanation="The logits are about 80 times larger than a normally trained network's, so the softmax "
                    "saturates at exactly 1.0 in float32 and the gradient of the cross-entropy loss underflows "
                    "to zero. Attacks that follow that gradient (FGSM, PGD with cross-entropy, JSMA) stall "
                    "although the decision boundary is as close as the baseline's.",
        remedy="Attack the logits, not the softmax: C&W (f6 objective), PGD with DLR or margin loss. "
               "Do not accept a robustness claim from softmax-gradient attacks on this model.",
        samples=[0, 1, 2, 3, 5, 8]),
    Finding(
        id="weak-strong-attack-gap", severity="error",
        title="FGSM breaks 3% of samples at L∞ 0.3 while C&W L2 breaks 100%",
        evidence={"fgsm-linf@0.3 success rate": 0.031, "pgd-linf@0.3 (DLR) success rate": 0.97,
                  "cw-l2 success rate": 1.0, "cw-l2 median L2": 1.33, "baseline cw-l2 median L2": 1.31},
        explanation="A single-step gradient attack should not be weaker than an optimisation attack by this "
                    "much on an undefended-size model: the gradient signal is masked, not absent.",
        remedy="Treat the FGSM robust accuracy as an artefact; gate releases on the C&W and PGD-DLR figures.",
        samples=[]),
    Finding(
        id="saturated-probabilities", severity="warning",
        title="99.9% of top-class probabilities are exactly 1.0",
        evidence={"fraction_top_prob_exactly_1": 0.999, "samples": 2000},
        explanation="Probabilities carry no margin information once they round to 1.0; any loss computed "
                    "from them is flat.",
        remedy="Report confidences from the logits; keep the softmax out of the attacked graph.",
        samples=[]),
]


def _model(name: str, idx: int, tmp_path: Path, x: np.ndarray, y: np.ndarray, *, distilled: bool, softmax: bool = False,
           clean: float) -> ModelRecord:
    rng = np.random.default_rng(10 + idx)
    correct = EVAL - 1  # one eval image is misclassified
    cw = _mins(rng, correct, 1.33 if distilled else 1.31, 0.38, 1.0)
    cwinf = _mins(rng, correct, 0.19 if distilled else 0.17, 0.30, 1.0)
    fgsm = _bounded(rng, correct, 0.031 if distilled else 0.86, 0.3)
    pgd = _bounded(rng, correct, 0.97, 0.3)
    attacks = [
        _attack("cw-l2", "l2", {"confidence": 0.0, "learning_rate": 0.01, "binary_search_steps": 6,
                                 "max_iterations": 500, "initial_const": 0.001, "abort_early": True},
                cw, correct, wall=21.4),
        _attack("cw-linf", "linf", {"max_iterations": 500, "learning_rate": 0.005, "tau_decrease": 0.9},
                cwinf, correct, wall=33.9),
        _attack("fgsm-linf", "linf", {"norm": "linf", "epsilon": 0.3}, fgsm, correct, epsilon=0.3, wall=0.04),
        _attack("pgd-linf", "linf", {"norm": "linf", "loss": "dlr", "epsilon": 0.3, "steps": 40, "step_size": 0.01,
                                     "restarts": 1, "random_start": True}, pgd, correct, epsilon=0.3, wall=1.9),
    ]
    folder = tmp_path / "reports" / "counterexamples" / name
    folder.mkdir(parents=True, exist_ok=True)
    order = sorted((d, i) for i, d in enumerate(cw) if d is not None and d <= 1.0)
    counterexamples = []
    for d, i in order[:8]:
        xi = x[i]
        adv = _perturb(xi, d, rng)
        true, adv_label = int(y[i]), CONFUSION[int(y[i])]
        npz = folder / f"robust-accuracy_cw-l2_1_-sample{i}.npz"
        np.savez_compressed(npz, x=xi, x_adv=adv, y=true, adv_label=adv_label, layout="NCHW",
                            input_range=np.array([0.0, 1.0]))
        counterexamples.append(Counterexample(
            model=name, property="robust-accuracy[cw-l2@1]", attack="cw-l2", norm="l2", sample_index=i,
            dataset_index=8000 + i, true_label=true, adv_label=adv_label, target=None,
            confidence_true=1.0 if distilled else float(rng.uniform(0.97, 0.9999)),
            confidence_adv=1.0 if distilled else float(rng.uniform(0.5, 0.7)),
            distances=_distances(xi, adv), epsilon=1.0, npz=str(npz), png=str(npz.with_suffix(".png")),
            reproduce=f"pytest --robustcheck 'models/{name}.onnx::robust-accuracy[cw-l2@1]' "
                      "--robustcheck-profile=ci --robustcheck-seed=0"))
    broken_l2 = sum(1 for d in cw if d is not None and d <= 1.0)
    broken_fgsm = sum(1 for d in fgsm if d is not None)
    masking_failed = distilled
    items = [
        ItemRecord(f"models/{name}.onnx::clean-accuracy", name, "clean-accuracy", "clean-accuracy", "passed",
                   figures=CleanAccuracyFigures(clean_accuracy=clean, min=0.975 if distilled else 0.98,
                                                dataset_size=2000),
                   duration_s=0.41),
        ItemRecord(f"models/{name}.onnx::robust[cw-l2@0.25]", name, "robust", "robust[cw-l2@0.25]", "passed",
                   figures=RobustPropertyFigures(attack="cw-l2", norm="l2", epsilon=0.25, targeted=False, pool=correct,
                                                 max_examples=100, examples=correct, replayed=0),
                   duration_s=38.2),
        ItemRecord(f"models/{name}.onnx::robust-accuracy[cw-l2@1]", name, "robust-accuracy", "robust-accuracy[cw-l2@1]",
                   "passed", figures=RobustAccuracyFigures(
                       attack="cw-l2", norm="l2", epsilon=1.0, targeted=False,
                       robust_accuracy=(correct - broken_l2) / EVAL,
                       min=0.5, samples=EVAL, broken=broken_l2, attack_success_rate=1.0,
                       median_distortion=float(np.median([d for d in cw if d is not None]))),
                   duration_s=21.9),
        ItemRecord(f"models/{name}.onnx::robust-accuracy[fgsm-linf@0.3]", name, "robust-accuracy",
                   "robust-accuracy[fgsm-linf@0.3]", "passed",
                   figures=RobustAccuracyFigures(
                       attack="fgsm-linf", norm="linf", epsilon=0.3, targeted=False,
                       robust_accuracy=(correct - broken_fgsm) / EVAL, min=0.05, samples=EVAL, broken=broken_fgsm,
                       attack_success_rate=broken_fgsm / correct, median_distortion=0.3), duration_s=0.1),
    ]
    findings: list[Finding] = []
    if masking_failed:
        findings = list(MASKING_FINDINGS)
        message = (f"{name}: 2 gradient-masking finding(s); gradient-based verdicts on this model cannot be trusted\n"
                   "  [vanishing-softmax-gradients] Cross-entropy gradients are exactly zero on 99.5% of correctly "
                   "classified samples\n    remedy: attack the logits (C&W f6, PGD with DLR/margin loss)\n"
                   "  [weak-strong-attack-gap] FGSM breaks 3% of samples at L∞ 0.3 while C&W L2 breaks 100%\n"
                   "    remedy: gate releases on the C&W and PGD-DLR figures")
        items.append(ItemRecord(f"models/{name}.onnx::gradient-masking", name, "gradient-masking", "gradient-masking",
                                "failed", message=message,
                                figures=GradientMaskingFigures(errors=2, warnings=1, policy="fail", findings=[
                                    "vanishing-softmax-gradients", "weak-strong-attack-gap",
                                    "saturated-probabilities"]),
                                duration_s=6.3))
    else:
        items.append(ItemRecord(f"models/{name}.onnx::gradient-masking", name, "gradient-masking", "gradient-masking",
                                "passed",
                                figures=GradientMaskingFigures(errors=0, warnings=0, findings=[], policy="fail"),
                                duration_s=4.8))
    items.append(ItemRecord(f"models/{name}.onnx::baseline", name, "baseline", "baseline", "passed",
                            figures=BaselineFigures(in_baseline=True), duration_s=0.2))
    spec = _spec(name, softmax)
    sha = f"{idx:02x}" + "5e1f0c2a9b7d3e4f6a8c0b2d4e6f8a1c3e5f7b9d1a3c5e7f9b2d4f6a8c0e2a4"[:62]
    return ModelRecord(name=name, file=f"models/{name}.onnx", sha256=sha, spec=spec,
                       config=_config(name, 0.975 if distilled else 0.98), clean_accuracy=clean, samples=EVAL,
                       items=sorted(items, key=lambda i: i.nodeid), attacks=attacks, counterexamples=counterexamples,
                       findings=findings)


def run_info(tmp_path: Path, *, baseline: bool = True) -> RunInfo:
    return RunInfo(
        robustcheck="0.1.0",
        versions={"python": "3.11.7", "torch": "2.13.0+cpu", "onnxruntime": "1.32.0", "onnx": "1.23.2",
                  "numpy": "2.4.6", "hypothesis": "6.151.0", "pytest": "9.0.1"},
        profile="ci", seed=0,
        machine={"platform": "Linux-6.8.0-x86_64-with-glibc2.36", "python": "3.11.7", "cpus": 2, "machine": "x86_64"},
        started="2026-11-24T09:12:03+00:00", finished="2026-11-24T09:16:41+00:00", duration_s=278.4, workers=2,
        interrupted=False, config_files=["models/robustcheck.toml"],
        baseline_file="reports/baseline.json" if baseline else None, report_dir=str(tmp_path / "reports"),
    )


def realistic_record(tmp_path: Path) -> RunRecord:
    x, y = _digits(EVAL)
    models = [
        _model("baseline", 0, tmp_path, x, y, distilled=False, clean=0.995),
        _model("distilled", 1, tmp_path, x, y, distilled=True, clean=0.991),
        _model("distilled-softmax", 2, tmp_path, x, y, distilled=True, softmax=True, clean=0.991),
    ]
    deltas = []
    for m in models:
        current = next(i.figures.robust_accuracy for i in m.items
                       if i.name == "robust-accuracy[cw-l2@1]" and isinstance(i.figures, RobustAccuracyFigures))
        before = current + (0.078125 if m.name == "distilled" else -0.015625)
        regressed = current < before - 0.05
        deltas.append(BaselineDelta(m.name, "robust-accuracy[cw-l2@1]", before, current, 0.05, regressed=regressed))
        item = next(i for i in m.items if i.kind == "baseline")
        item.verdict = "failed" if regressed else "passed"
        item.figures = BaselineFigures(in_baseline=True, regressions=int(regressed))
        item.message = (f"{m.name}: regressed against the baseline reports/baseline.json\n"
                        f"  robust-accuracy[cw-l2@1]: robust accuracy {before:.1%} -> {current:.1%} (tolerance 5.0%)"
                        if regressed else "")
        errors = float(sum(f.severity == "error" for f in m.findings))
        deltas.append(BaselineDelta(m.name, "masking-findings", errors, errors, None, False))
    return RunRecord(run=run_info(tmp_path), models=models, baseline=deltas)


def hostile_record(tmp_path: Path) -> RunRecord:
    """A record whose model-supplied text carries markup that must never become live HTML."""
    record = realistic_record(tmp_path)
    m = record.models[0]
    m.name = f"evil{HOSTILE}"
    m.file = f"models/{HOSTILE}.onnx"
    assert m.spec is not None
    m.spec.input.name = HOSTILE
    m.spec.output.cut_node = f"{IMG} javascript:alert(1)"
    m.spec.warnings = [HOSTILE, "</style><style>body{background:url(https://evil.example/x.png)}</style>"]
    m.config["source"] = HOSTILE
    m.config["attacks"] = {"cw-l2": {"note": HOSTILE}}
    m.attacks[0].params["note"] = HOSTILE
    m.items[0].message = f"failed because {HOSTILE}"
    m.items[0].verdict = "failed"
    masking = next(i for i in m.items if isinstance(i.figures, GradientMaskingFigures))
    masking.figures = GradientMaskingFigures(errors=1, warnings=0, findings=[HOSTILE], policy="fail")
    for c in m.counterexamples:
        c.property = f"robust[{SCRIPT}]"
        c.reproduce = f"pytest {IMG}"
    m.findings = [Finding(id=f"f{SCRIPT}", severity="error", title=f"title {IMG}",
                                evidence={HOSTILE: HOSTILE, "nested": {"x": IMG}}, explanation=f"because {SCRIPT}",
                                remedy=f"do {IMG}", samples=[1])]
    record.baseline[0].model = m.name
    record.baseline[0].note = HOSTILE
    record.run.versions["plugin"] = HOSTILE
    return record


def large_record(tmp_path: Path, models: int = 24, counterexamples: int = 40) -> RunRecord:
    """Many models with many counterexamples each (files shared between entries to stay fast)."""
    base = realistic_record(tmp_path)
    template = base.models[0]
    out = []
    for k in range(models):
        src = base.models[k % len(base.models)]
        ces = []
        for j in range(counterexamples):
            c = src.counterexamples[j % len(src.counterexamples)]
            ces.append(Counterexample(**{**c.__dict__, "sample_index": j, "model": f"model-{k:02d}",
                                         "distances": {**c.distances, "l2": c.distances["l2"] + j * 1e-3}}))
        out.append(ModelRecord(name=f"model-{k:02d}", file=f"models/model-{k:02d}.onnx", sha256=template.sha256,
                               spec=src.spec, config=src.config, clean_accuracy=src.clean_accuracy, samples=src.samples,
                               items=src.items, attacks=src.attacks, counterexamples=ces, findings=src.findings))
    base.models = out
    base.baseline = []
    return base
