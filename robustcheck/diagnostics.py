"""Gradient-masking and attack-failure diagnostics: say when a "robust" verdict may be false comfort.

`diagnose` runs a battery of checks on correctly classified samples and returns `Finding`s,
each with a stable id, a severity, the measured evidence, an explanation and a remedy.
Severity follows evidence: "error" means measured evidence that gradient-based verdicts on
this model cannot be trusted; "warning" is a symptom worth a look; "info" is context.

References for the checks and their thresholds:
- Papernot et al. 2016 (defensive distillation) and Carlini & Wagner 2016, "Defensive
  distillation is not robust to adversarial examples": vanishing softmax gradients.
- Athalye, Carlini & Wagner, "Obfuscated Gradients Give a False Sense of Security" (ICML 2018),
  §3.1: one-step beats iterative, unbounded attacks below 100%, black-box beats white-box,
  success not growing with ε; shattered and stochastic gradients (EOT).
- Croce & Hein 2020 (AutoAttack): DLR loss as the scale-invariant strong probe.
- Pintor et al., "Indicators of Attack Failure" (NeurIPS 2022): silent success, incomplete
  optimisation, unconstrained-attack failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from robustcheck.attacks import FGSM, PGD, AttackResult, RandomNoise, SquareAttack
from robustcheck.loss_surface import scan_for_jumps
from robustcheck.model import Model
from robustcheck.record import FindingRecord

Severity = Literal["error", "warning", "info"]

# -- thresholds (named after the check they steer) --------------------------------------
#: Fraction of samples with an exactly-zero float32 cross-entropy input gradient (Papernot 2016;
#: Carlini & Wagner 2016) above which softmax-gradient attacks are blind.
ZERO_GRADIENT_ERROR = 0.5
ZERO_GRADIENT_WARNING = 0.1
#: Fraction of samples whose top float32 probability is exactly 1.0 (saturated softmax).
SATURATION_WARNING = 0.5
#: L∞ budget of the weak/strong comparison, as a fraction of the input range (MNIST's 0.3).
PROBE_EPSILON = 0.3
#: Success-rate gap strong − weak at the same ε (Athalye et al. 2018 §3.1; the distillation signature).
GAP_ERROR = 0.5
GAP_WARNING = 0.2
#: One-step (FGSM) beating iterative (PGD) by this much with the same loss (Athalye §3.1).
ONE_STEP_MARGIN = 0.1
#: Success falling by this much when ε grows, or rising by this much with doubled steps.
MONOTONIC_MARGIN = 0.1
CONVERGENCE_MARGIN = 0.1
#: An unbounded C&W attack below this success rate means gradients do not lead anywhere (Athalye §3.1).
UNBOUNDED_ERROR = 0.95
#: Fraction of samples where gradient-free probes succeed and gradient attacks failed (Athalye §3.1).
BLACKBOX_ERROR = 0.05
#: Fraction of samples with zero/NaN/inf margin-loss gradients.
BROKEN_GRADIENT_ERROR = 0.5
#: Median relative error of the first-order prediction of the margin loss along the gradient,
#: for a step of LINEARITY_STEP × range: above this the gradients are shattered (Athalye §4.1).
LINEARITY_STEP = 1e-3
LINEARITY_ERROR = 0.5
#: Discontinuity scan (loss_surface.py): the FGSM path is cut into DISCONTINUITY_PIECES steps and
#: the steepest one halved DISCONTINUITY_HALVINGS times. A continuous loss keeps ~2^-14 ≈ 6e-5 of
#: the change (measured 7e-5 to 1.1e-4 on ReLU CNNs and MLPs, distilled ones included); a jump
#: keeps most of it (0.96 median on the k-WTA control). A sample counts as a jump above
#: DISCONTINUITY_RATIO, when the change also exceeds float32 noise (DISCONTINUITY_FLOOR × (1 + |loss|)).
DISCONTINUITY_PIECES = 128
DISCONTINUITY_HALVINGS = 14
DISCONTINUITY_RATIO = 0.05
DISCONTINUITY_FLOOR = 1e-4
#: Fractions of samples with a jump for a warning and for an error (shattered gradients).
DISCONTINUITY_WARNING = 0.05
DISCONTINUITY_ERROR = 0.25
#: Replica/oracle label disagreements among attack candidates above this fraction.
DISAGREEMENT_WARNING = 0.05
#: Repeated oracle calls on one input.
RANDOMNESS_REPEATS = 4
#: Pintor et al. 2022: normalised loss still moving by more than this over the last 10 steps.
INCOMPLETE_OPTIMISATION = 0.05
INCOMPLETE_FRACTION = 0.2

_NONDIFFERENTIABLE_ERROR_OPS = {"Round", "Floor", "Ceil", "Sign", "QuantizeLinear", "DequantizeLinear",
                                "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike"}

BUDGETS: dict[str, dict[str, int]] = {
    "smoke": {"samples": 16, "steps": 20, "cw_steps": 2, "cw_iterations": 100, "noise_draws": 10, "queries": 300},
    "default": {"samples": 50, "steps": 40, "cw_steps": 3, "cw_iterations": 200, "noise_draws": 20, "queries": 1000},
    "thorough": {"samples": 200, "steps": 100, "cw_steps": 5, "cw_iterations": 1000, "noise_draws": 100, "queries": 5000},
}


@dataclass(frozen=True)
class Finding:
    """One diagnostic result with its evidence (plain JSON-able values)."""

    id: str
    severity: Severity
    title: str
    evidence: dict[str, Any]
    explanation: str
    remedy: str
    samples: tuple[int, ...] = field(default=())

    def to_record(self) -> FindingRecord:
        return FindingRecord(id=self.id, severity=self.severity, title=self.title, evidence=dict(self.evidence),
                             explanation=self.explanation, remedy=self.remedy, samples=list(self.samples))


def diagnose(
    model: Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    results: Sequence[AttackResult] = (),
    budget: str = "default",
    seed: int = 0,
) -> list[Finding]:
    """Run every check on correctly classified samples `x`, `y`; reuse `results` where possible."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    b = BUDGETS[budget]
    x, y = np.asarray(x)[: b["samples"]], np.asarray(y)[: b["samples"]]
    if not len(x):
        return [Finding("no-samples", "warning", "No correctly classified samples to diagnose", {},
                        "Every diagnostic needs samples the model classifies correctly.",
                        "Check the dataset, the input range and the layout.")]
    lo, hi = model.input_range
    eps = PROBE_EPSILON * (hi - lo)
    findings: list[Finding] = []
    findings += check_randomness(model, x)
    findings += check_output_head(model, x)
    gradient_failures = np.ones(len(x), dtype=bool)
    if model.replica is None:
        findings.append(Finding(
            "no-replica", "warning", "No differentiable replica: gradient checks skipped",
            {"reason": model.replica_reason}, "Gradient-based attacks cannot run on this model; only the "
            "gradient-free probes below judged it.", "Support the missing operators, or rely on black-box attacks."))
    else:
        findings += check_softmax_gradients(model, x, y)
        findings += check_nondifferentiable_ops(model)
        findings += check_broken_gradients(model, x, y)
        probes = run_probes(model, x, y, eps, b, seed)
        findings += check_weak_vs_strong(probes, eps, results)
        findings += check_one_step_and_convergence(probes, eps)
        findings += check_unbounded(model, x, y, results, b, seed)
        gradient_failures = ~(probes["pgd-dlr"].success | probes["pgd-margin"].success)
    if not any(f.id == "randomized-model" for f in findings):  # noise would read as jumps
        findings += check_shattered_gradients(model, x, y, eps, seed)
    findings += check_gradient_free(model, x, y, eps, gradient_failures, b, seed)
    for result in results:
        findings += attack_failure_indicators(result)
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(_merge_duplicates(findings), key=lambda f: (order[f.severity], f.id))


# ---------------------------------------------------------------------------------------
# The checks

def check_randomness(model: Model, x: np.ndarray) -> list[Finding]:
    """Check 8: repeated oracle calls on the same inputs must agree."""
    first = model.oracle_logits(x)
    spread = 0.0
    flips = np.zeros(len(x), dtype=bool)
    for _ in range(RANDOMNESS_REPEATS - 1):
        again = model.oracle_logits(x)
        spread = max(spread, float(np.abs(again - first).max()))
        flips |= again.argmax(1) != first.argmax(1)
    randomized = "RandomNormalLike" in model.nondifferentiable_ops or "RandomUniformLike" in model.nondifferentiable_ops
    if spread == 0.0 and not randomized:
        return []
    return [Finding(
        "randomized-model", "error", "The model is randomised: the same input gives different outputs",
        {"repeats": RANDOMNESS_REPEATS, "max_logit_spread": spread, "label_flips": int(flips.sum()),
         "random_ops": [o for o in model.nondifferentiable_ops if o.startswith("Random")]},
        "A stochastic defence hides the gradient behind noise: single-sample gradients point nowhere and an attack "
        "that fails once may succeed on the next call.",
        "Attack the expectation over the randomness (EOT: average gradients over many draws), and judge success on "
        "repeated oracle calls.", tuple(np.flatnonzero(flips).tolist()))]


def check_output_head(model: Model, x: np.ndarray) -> list[Finding]:
    """Check 2: the graph ended in Softmax (cut) or its outputs look like probabilities."""
    kind = model.output_spec.kind
    if kind == "logits":
        return []
    logits = model.oracle_logits(x)
    probs = torch.softmax(torch.from_numpy(logits).float(), dim=1)
    saturated = float((probs.max(dim=1).values == 1.0).float().mean())
    evidence = {"output_kind": kind, "cut_node": model.output_spec.cut_node, "saturated_fraction": saturated}
    if kind == "log-probabilities":
        severity: Severity = "error" if saturated >= SATURATION_WARNING else "warning"
        return [Finding(
            "probability-output", severity, "The model outputs probabilities; no logits to attack",
            evidence, "Attacks run on log-probabilities. Where float32 probabilities saturate at 1.0 the information "
            "is gone before any attack sees it, so gradient attacks stall.",
            "Export the model without its softmax (or name the logits output with `output =`).")]
    severity = "warning" if saturated >= SATURATION_WARNING else "info"
    return [Finding(
        "softmax-head", severity, f"Trailing {kind.removeprefix('cut-')} head cut; attacks use its input",
        evidence, "robustcheck attacks the logits, not the probabilities (foolbox issue #618). "
        + ("The softmax is saturated here: attacks that follow its gradients see none." if severity == "warning"
           else "The logits are not saturated; this is information only."),
        "Nothing to do for robustcheck; for other tools, export the logits.")]


def check_softmax_gradients(model: Model, x: np.ndarray, y: np.ndarray) -> list[Finding]:
    """Check 1: exactly-zero float32 cross-entropy input gradients, logit scale, saturation."""
    xt = torch.from_numpy(x).requires_grad_(True)
    logits = model.torch_logits(xt)
    probs = torch.softmax(logits.float(), dim=1)
    loss = -torch.log(probs.gather(1, torch.from_numpy(y)[:, None]).squeeze(1))
    (grad,) = torch.autograd.grad(loss.sum(), xt)
    gnorm = grad.flatten(1).abs().amax(dim=1)
    zero = (gnorm == 0).numpy()
    z = logits.detach().numpy().astype(np.float64)
    top2 = np.sort(z, axis=1)[:, -2:]
    evidence = {
        "zero_gradient_fraction": float(zero.mean()),
        "mean_abs_logit": float(np.abs(z).mean()),
        "median_top1_top2_margin": float(np.median(top2[:, 1] - top2[:, 0])),
        "saturated_fraction": float((probs.max(dim=1).values == 1.0).float().mean()),
        "samples": len(x),
    }
    fraction = evidence["zero_gradient_fraction"]
    if fraction < ZERO_GRADIENT_WARNING:
        return []
    severity: Severity = "error" if fraction >= ZERO_GRADIENT_ERROR else "warning"
    return [Finding(
        "vanishing-softmax-gradients", severity,
        f"Cross-entropy gradients are exactly zero on {fraction:.0%} of the samples",
        evidence, "The logits are so large that the float32 softmax saturates: its gradient underflows to zero, so "
        "FGSM, PGD with cross-entropy and JSMA find nothing although the model is not robust (defensive "
        "distillation's effect, Carlini & Wagner 2016).",
        "Judge robustness with attacks on the logits: C&W (objective f6), PGD with the DLR or margin loss.",
        tuple(np.flatnonzero(zero).tolist()))]


def check_nondifferentiable_ops(model: Model) -> list[Finding]:
    """Check 7 (graph): operators whose gradient is zero or undefined almost everywhere."""
    ops = list(model.nondifferentiable_ops)
    if not ops:
        return []
    severe = sorted(set(ops) & _NONDIFFERENTIABLE_ERROR_OPS)
    severity: Severity = "error" if severe else "warning"
    return [Finding(
        "nondifferentiable-ops", severity, f"The graph uses non-differentiable operators: {', '.join(ops)}",
        {"operators": ops}, "Rounding, quantisation, sign and random operators give zero or meaningless gradients "
        "(shattered gradients, Athalye et al. 2018): gradient attacks on this graph are blind.",
        "Attack through a differentiable approximation (BPDA: identity in the backward pass) or with gradient-free "
        "attacks.")]


def _margin_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    mask = torch.nn.functional.one_hot(y, logits.shape[1]).bool()
    return logits.masked_fill(mask, float("-inf")).amax(dim=1) - logits[mask]


def check_broken_gradients(model: Model, x: np.ndarray, y: np.ndarray) -> list[Finding]:
    """Check 7 (measured): zero, NaN or infinite margin-loss gradients."""
    xt = torch.from_numpy(x).float().requires_grad_(True)
    loss = _margin_loss(model.torch_logits(xt), torch.from_numpy(y))
    (grad,) = torch.autograd.grad(loss.sum(), xt)
    flat = grad.flatten(1)
    bad = (~torch.isfinite(flat).all(dim=1)) | (flat.abs().amax(dim=1) == 0)
    fraction = float(bad.float().mean())
    if fraction < BROKEN_GRADIENT_ERROR:
        return []
    return [Finding(
        "broken-gradients", "error", f"Logit-margin gradients are zero or not finite on {fraction:.0%} of the samples",
        {"fraction": fraction}, "Even attacks on the logits get no gradient signal here.",
        "Use gradient-free attacks, or BPDA through the operators that block the gradient.",
        tuple(torch.nonzero(bad).flatten().tolist()))]


def check_shattered_gradients(model: Model, x: np.ndarray, y: np.ndarray, eps: float, seed: int) -> list[Finding]:
    """Check 7 (measured): a discontinuous loss along the attack path, or gradients that do not
    predict the loss a tiny step away (Athalye et al. 2018 §4.1).

    The discontinuity scan runs on the oracle along the FGSM direction (the sign of the margin
    gradient; a seeded random sign where there is no replica or no gradient), ε long in L∞.
    """
    lo, hi = model.input_range
    rng = np.random.default_rng(seed)
    direction = rng.choice(np.array([-1.0, 1.0], dtype=x.dtype), size=x.shape)
    linearity = None
    if model.replica is not None:
        grad, linearity = _gradient_and_linearity(model, x, y)
        usable = np.abs(grad).reshape(len(x), -1).max(axis=1) > 0
        direction[usable] = np.sign(grad[usable])
    scan = scan_for_jumps(model, x, y, (eps * direction).astype(x.dtype), pieces=DISCONTINUITY_PIECES,
                          halvings=DISCONTINUITY_HALVINGS)
    jump = (scan.ratio >= DISCONTINUITY_RATIO) & (scan.final > DISCONTINUITY_FLOOR * (1 + scan.loss_scale))
    fraction = float(jump.mean())
    evidence: dict[str, Any] = {
        "samples_with_jump": int(jump.sum()), "samples": len(x), "jump_fraction": fraction,
        "median_jump": float(np.median(scan.final[jump])) if jump.any() else 0.0,
        "median_loss_scale": float(np.median(scan.loss_scale)),
        "median_change_ratio": float(np.median(scan.ratio)), "halvings": scan.halvings,
        "continuous_ratio": 2.0 ** -scan.halvings, "path_linf": eps,
    }
    if linearity is not None:
        evidence["median_linearity_error"] = linearity
        evidence["linearity_step"] = LINEARITY_STEP * (hi - lo)
    nonlinear = linearity is not None and linearity > LINEARITY_ERROR
    if fraction < DISCONTINUITY_WARNING and not nonlinear:
        return []
    severity: Severity = "error" if fraction >= DISCONTINUITY_ERROR or nonlinear else "warning"
    title = (f"The loss jumps along the attack path on {fraction:.0%} of the samples" if jump.any()
             else "Gradients do not predict the loss even a tiny step away")
    return [Finding(
        "shattered-gradients", severity, title, evidence,
        "The model's output is discontinuous (or wildly non-linear) at the scale of one attack step: halving the "
        f"interval {scan.halvings} times leaves a jump of the margin loss where a continuous function would shrink "
        "the change 2^-halvings-fold. Gradients describe the model only up to the next jump, so gradient attacks "
        "can fail on a model that is not robust (shattered gradients, Athalye et al. 2018).",
        "Do not trust gradient-based verdicts here: use gradient-free attacks (Square Attack), BPDA through the "
        "discontinuous operators, or attack a smooth surrogate and transfer.",
        tuple(np.flatnonzero(jump).tolist()))]


def _gradient_and_linearity(model: Model, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """The margin-loss input gradient, and the median relative error of its first-order
    prediction of the loss LINEARITY_STEP × range along itself."""
    lo, hi = model.input_range
    yt = torch.from_numpy(y)
    xt = torch.from_numpy(x).float().requires_grad_(True)
    loss = _margin_loss(model.torch_logits(xt), yt)
    (grad,) = torch.autograd.grad(loss.sum(), xt)
    flat = grad.flatten(1)
    ok = torch.isfinite(flat).all(dim=1) & (flat.abs().amax(dim=1) > 0)
    step = LINEARITY_STEP * (hi - lo)
    direction = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-30)
    with torch.no_grad():
        moved = (xt.detach().flatten(1) + step * direction).clamp(lo, hi)
        actual = (_margin_loss(model.torch_logits(moved.view_as(xt)), yt) - loss.detach()) / step
        predicted = (flat * (moved - xt.detach().flatten(1))).sum(dim=1) / step
        rel = ((actual - predicted).abs() / predicted.abs().clamp_min(1e-12))[ok]
    grad_np = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0).numpy()
    return grad_np, float(rel.median()) if len(rel) else 0.0


def run_probes(model: Model, x: np.ndarray, y: np.ndarray, eps: float, b: dict[str, int], seed: int) -> dict[str, AttackResult]:
    """The bounded L∞ attacks the weak/strong, one-step and convergence checks compare."""
    steps = b["steps"]
    probes = {
        "fgsm-ce": FGSM(epsilon=eps, loss="ce"),
        "pgd-ce": PGD(epsilon=eps, steps=steps, loss="ce"),
        "pgd-dlr": PGD(epsilon=eps, steps=steps, loss="dlr"),
        "pgd-margin": PGD(epsilon=eps, steps=steps, loss="margin"),
        "pgd-dlr-2x": PGD(epsilon=eps, steps=2 * steps, loss="dlr"),
        "pgd-dlr-eps/4": PGD(epsilon=eps / 4, steps=steps, loss="dlr"),
        "pgd-dlr-eps/2": PGD(epsilon=eps / 2, steps=steps, loss="dlr"),
    }
    return {name: attack.run(model, x, y, seed=seed) for name, attack in probes.items()}


def check_weak_vs_strong(probes: dict[str, AttackResult], eps: float, results: Sequence[AttackResult]) -> list[Finding]:
    """Check 3: softmax-gradient attacks against logit attacks at the same ε."""
    weak = max(probes["fgsm-ce"].success_rate, probes["pgd-ce"].success_rate)
    strong_rates = {"pgd-dlr": probes["pgd-dlr"].success_rate, "pgd-margin": probes["pgd-margin"].success_rate}
    for r in results:
        if r.norm == "linf" and r.epsilon is None and len(r.success):
            strong_rates[r.attack] = float(r.within(eps).mean())
    strong = max(strong_rates.values())
    gap = strong - weak
    evidence = {"epsilon_linf": eps, "fgsm_ce": probes["fgsm-ce"].success_rate, "pgd_ce": probes["pgd-ce"].success_rate,
                **{k.replace("-", "_"): v for k, v in strong_rates.items()}, "gap": gap}
    if gap < GAP_WARNING:
        return []
    severity: Severity = "error" if gap >= GAP_ERROR else "warning"
    failed_weak = ~(probes["fgsm-ce"].success | probes["pgd-ce"].success) & (probes["pgd-dlr"].success | probes["pgd-margin"].success)
    return [Finding(
        "weak-vs-strong", severity,
        f"Logit attacks succeed on {strong:.0%}, softmax-gradient attacks on {weak:.0%} at the same ε",
        evidence, "At the same L∞ budget, attacks that follow cross-entropy gradients fail where attacks on the "
        "logits succeed: the defence hides the gradient rather than removing the adversarial examples (the "
        "signature of defensive distillation).",
        "Report robustness from the strong attacks (C&W, PGD-DLR/margin), never from FGSM/PGD-CE/JSMA.",
        tuple(np.flatnonzero(failed_weak).tolist()))]


def check_one_step_and_convergence(probes: dict[str, AttackResult], eps: float) -> list[Finding]:
    """Check 4: one step beating iterative; success not growing with ε or with doubled steps."""
    out = []
    fgsm, pgd = probes["fgsm-ce"].success_rate, probes["pgd-ce"].success_rate
    if fgsm > pgd + ONE_STEP_MARGIN:
        out.append(Finding(
            "one-step-beats-iterative", "error", f"FGSM ({fgsm:.0%}) beats PGD ({pgd:.0%}) with the same loss",
            {"fgsm_ce": fgsm, "pgd_ce": pgd}, "An iterative attack can always take FGSM's step; when it does worse "
            "the gradients mislead locally (Athalye et al. 2018 §3.1).", "Use gradient-free attacks and BPDA/EOT."))
    curve = [probes["pgd-dlr-eps/4"].success_rate, probes["pgd-dlr-eps/2"].success_rate, probes["pgd-dlr"].success_rate]
    if any(b < a - MONOTONIC_MARGIN for a, b in zip(curve, curve[1:])):
        out.append(Finding(
            "success-not-monotonic-in-epsilon", "error", "Attack success falls as ε grows",
            {"epsilons": [eps / 4, eps / 2, eps], "pgd_dlr": curve}, "A larger budget contains every smaller one: "
            "success that drops with ε means the attack is failing, not the model resisting.",
            "Increase steps/restarts; use gradient-free attacks."))
    doubled = probes["pgd-dlr-2x"].success_rate
    if doubled > probes["pgd-dlr"].success_rate + CONVERGENCE_MARGIN:
        out.append(Finding(
            "not-converged", "warning", "Doubling the iterations raises attack success",
            {"pgd_dlr": probes["pgd-dlr"].success_rate, "pgd_dlr_doubled": doubled},
            "The attacks had not converged at the configured budget.", "Raise the budget (profile thorough)."))
    return out


def check_unbounded(model: Model, x: np.ndarray, y: np.ndarray, results: Sequence[AttackResult],
                    b: dict[str, int], seed: int) -> list[Finding]:
    """Check 5: an attack with no distortion bound must reach (nearly) every sample.

    PGD on the logit margin with ε = the whole input range (every input of the box is allowed),
    and any minimal-norm attack result given (C&W, EAD: unbounded by construction).
    """
    lo, hi = model.input_range
    probe = PGD(epsilon=hi - lo, steps=b["steps"], loss="margin").run(model, x, y, seed=seed)
    rates = {"pgd_margin_full_range": probe.success_rate}
    for r in results:
        if r.epsilon is None and r.targets is None and len(r.success) and r.attack in ("cw-l2", "ead"):
            rates[r.attack.replace("-", "_")] = r.success_rate
    rate = max(rates.values())
    if rate >= 1.0:
        return []
    severity: Severity = "error" if rate < UNBOUNDED_ERROR else "warning"
    return [Finding(
        "unbounded-attack-fails", severity, f"Attacks with no distortion bound reach only {rate:.0%} of the samples",
        {**rates, "steps": b["steps"]},
        "With no bound on the distortion some adversarial example always exists (any image of another class); an "
        "unbounded attack that fails shows the optimisation is blocked (Athalye et al. 2018 §3.1).",
        "Do not trust bounded verdicts; use gradient-free attacks and check for masking.",
        tuple(np.flatnonzero(~probe.success).tolist()))]


def check_gradient_free(model: Model, x: np.ndarray, y: np.ndarray, eps: float, gradient_failed: np.ndarray,
                        b: dict[str, int], seed: int) -> list[Finding]:
    """Check 6: random noise and Square Attack (oracle only) against the gradient attacks' failures."""
    noise = RandomNoise(epsilon=eps, draws=b["noise_draws"]).run(model, x, y, seed=seed)
    rows = np.flatnonzero(gradient_failed & ~noise.success)
    square_success = np.zeros(len(x), dtype=bool)
    if len(rows):
        square = SquareAttack(epsilon=eps, queries=b["queries"]).run(model, x[rows], y[rows], seed=seed)
        square_success[rows] = square.success
    beaten = gradient_failed & (noise.success | square_success)
    evidence = {"epsilon_linf": eps, "gradient_failed": int(gradient_failed.sum()), "noise_success": int(noise.success.sum()),
                "square_success_where_gradient_failed": int(square_success.sum()), "beaten": int(beaten.sum()),
                "samples": len(x)}
    if not beaten.any():
        return []
    fraction = float(beaten.mean())
    severity: Severity = "error" if fraction >= BLACKBOX_ERROR else "warning"
    return [Finding(
        "gradient-free-beats-gradient", severity,
        f"Gradient-free probes break {int(beaten.sum())} sample(s) the gradient attacks could not",
        evidence, "Random search that only queries the model succeeds where gradient attacks failed: the gradients "
        "are masked, not the adversarial examples absent (Athalye et al. 2018 §3.1).",
        "Use black-box attacks (Square Attack) in the evaluation; look for shattered or stochastic gradients.",
        tuple(np.flatnonzero(beaten).tolist()))]


def attack_failure_indicators(result: AttackResult) -> list[Finding]:
    """Check 9 (Pintor et al. 2022) on one attack run: silent success and incomplete optimisation."""
    out: list[Finding] = []
    trace = result.loss_trace
    if trace is None or not len(result.success):
        return out
    label = f"{result.attack}" + (f"@{result.epsilon:g}" if result.epsilon is not None else "")
    # Silent success: the replica saw the objective reach success but no adversarial example came back.
    reached = np.nanmin(np.where(np.isfinite(trace), trace, np.inf), axis=1) <= 0 if trace.shape[1] else np.zeros(len(trace), bool)
    if result.attack in ("cw-l2", "cw-linf", "cw-l0", "ead"):
        silent = reached[: len(result.success)] & ~result.success
        if silent.any():
            out.append(Finding(
                f"silent-success:{label}", "warning", f"{result.attack}: success reached during optimisation but not returned",
                {"attack": result.attack, "samples_affected": int(silent.sum())},
                "The attack crossed the decision boundary on the replica yet returned a non-adversarial point "
                "(a replica/oracle mismatch or a bookkeeping failure).",
                "Check replica parity; keep the best iterate.", tuple(np.flatnonzero(silent).tolist())))
    # Incomplete optimisation: the normalised loss still moving over the last 10 recorded steps.
    failed = ~result.success[: len(trace)]
    if failed.any() and trace.shape[1] >= 10:
        rows = trace[failed]
        span = np.nanmax(rows, axis=1) - np.nanmin(rows, axis=1)
        last = rows[:, -10:]
        moving = np.abs(last[:, -1] - last[:, 0]) / np.maximum(span, 1e-12) > INCOMPLETE_OPTIMISATION
        moving &= np.isfinite(last).all(axis=1)
        if moving.mean() >= INCOMPLETE_FRACTION:
            out.append(Finding(
                f"incomplete-optimisation:{label}", "warning",
                f"{result.attack}: the loss was still moving when the attack stopped ({int(moving.sum())} failed samples)",
                {"attack": result.attack, "failed": int(failed.sum()), "still_moving": int(moving.sum()),
                 "threshold": INCOMPLETE_OPTIMISATION},
                "The attack stopped before converging on samples it failed on (Pintor et al. 2022).",
                "Raise the iterations (profile thorough) before trusting these failures."))
    if result.replica_disagreements > DISAGREEMENT_WARNING * len(result.success):
        out.append(Finding(
            f"replica-disagreement:{label}", "warning",
            f"{result.attack}: the replica and onnxruntime disagree on {result.replica_disagreements} candidates",
            {"attack": result.attack, "disagreements": result.replica_disagreements},
            "Gradients come from a replica that does not match the oracle near these inputs.",
            "Report the operator mismatch; verdicts stay the oracle's."))
    return out


def _merge_duplicates(findings: list[Finding]) -> list[Finding]:
    seen: dict[str, Finding] = {}
    for f in findings:
        seen.setdefault(f.id, f)
    return list(seen.values())
