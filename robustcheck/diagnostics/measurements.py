"""The measuring functions of the diagnostic checks: numbers only, no verdicts.

Each takes the shared `Context` (and, for the per-attack indicators, one `AttackResult`) and
returns a `Measured` — the evidence a report shows, the values the check's rules grade —
or None when the check does not apply to this model. Thresholds live in `checks.py`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from robustcheck import metrics
from robustcheck.attacks import AttackResult
from robustcheck.diagnostics.loss_surface import scan_for_jumps
from robustcheck.diagnostics.probes import LINEARITY_STEP, Context
from robustcheck.diagnostics.table import Measured

#: Repeated oracle calls on one input (randomised-model check).
RANDOMNESS_REPEATS = 4
#: Operators whose gradient is zero or meaningless: their presence alone is an error.
NONDIFFERENTIABLE_ERROR_OPS = {"Round", "Floor", "Ceil", "Sign", "QuantizeLinear", "DequantizeLinear",
                               "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike"}
#: Discontinuity scan (loss_surface.py): the FGSM path is cut into DISCONTINUITY_PIECES steps and
#: the steepest one halved DISCONTINUITY_HALVINGS times. A continuous loss keeps ~2^-14 ≈ 6e-5 of
#: the change (measured 7e-5 to 1.1e-4 on ReLU CNNs and MLPs, distilled ones included); a jump
#: keeps most of it (0.96 median on the k-WTA control). A sample counts as a jump above
#: DISCONTINUITY_RATIO, when the change also exceeds float32 noise (DISCONTINUITY_FLOOR × (1 + |loss|)).
DISCONTINUITY_PIECES = 128
DISCONTINUITY_HALVINGS = 14
DISCONTINUITY_RATIO = 0.05
DISCONTINUITY_FLOOR = 1e-4
#: Pintor et al. 2022: a failed sample whose normalised loss still moves by more than this over
#: its last 10 recorded steps had not converged.
INCOMPLETE_OPTIMISATION = 0.05


def randomness(ctx: Context) -> Measured:
    first = ctx.oracle_logits
    spread = 0.0
    flips = np.zeros(len(ctx.x), dtype=bool)
    for _ in range(RANDOMNESS_REPEATS - 1):
        again = ctx.model.oracle_logits(ctx.x)
        spread = max(spread, float(np.abs(again - first).max()))
        flips |= again.argmax(1) != first.argmax(1)
    ops = ctx.model.nondifferentiable_ops
    random_ops = "RandomNormalLike" in ops or "RandomUniformLike" in ops
    return Measured(
        {"repeats": RANDOMNESS_REPEATS, "max_logit_spread": spread, "label_flips": int(flips.sum()),
         "random_ops": [o for o in ops if o.startswith("Random")]},
        metrics={"randomised": float(spread != 0.0 or random_ops)}, samples=np.flatnonzero(flips).tolist())


def _head(ctx: Context) -> Measured:
    probs = torch.softmax(torch.from_numpy(ctx.oracle_logits).float(), dim=1)
    saturated = float((probs.max(dim=1).values == 1.0).float().mean())
    spec = ctx.model.output_spec
    return Measured({"output_kind": spec.kind, "cut_node": spec.cut_node, "saturated_fraction": saturated},
                    text={"head": spec.kind.removeprefix("cut-")})


def probability_output(ctx: Context) -> Measured | None:
    return _head(ctx) if ctx.model.output_spec.kind == "log-probabilities" else None


def softmax_head(ctx: Context) -> Measured | None:
    return _head(ctx) if ctx.model.output_spec.kind.startswith("cut-") else None


def no_replica(ctx: Context) -> Measured | None:
    return None if ctx.model.replica is not None else Measured({"reason": ctx.model.replica_reason})


def softmax_gradients(ctx: Context) -> Measured:
    """Exactly-zero float32 cross-entropy input gradients, logit scale, saturation."""
    xt = torch.from_numpy(ctx.x).requires_grad_(True)
    logits = ctx.model.torch_logits(xt)
    probs = torch.softmax(logits.float(), dim=1)
    loss = -torch.log(probs.gather(1, torch.from_numpy(ctx.y)[:, None]).squeeze(1))
    (grad,) = torch.autograd.grad(loss.sum(), xt)
    zero = (grad.flatten(1).abs().amax(dim=1) == 0).numpy()
    z = logits.detach().numpy().astype(np.float64)
    top2 = np.sort(z, axis=1)[:, -2:]
    return Measured({
        "zero_gradient_fraction": float(zero.mean()),
        "mean_abs_logit": float(np.abs(z).mean()),
        "median_top1_top2_margin": float(np.median(top2[:, 1] - top2[:, 0])),
        "saturated_fraction": float((probs.max(dim=1).values == 1.0).float().mean()),
        "samples": len(ctx.x),
    }, samples=np.flatnonzero(zero).tolist())


def nondifferentiable_ops(ctx: Context) -> Measured | None:
    ops = list(ctx.model.nondifferentiable_ops)
    if not ops:
        return None
    return Measured({"operators": ops}, metrics={"severe_ops": float(len(set(ops) & NONDIFFERENTIABLE_ERROR_OPS))},
                    text={"operator_list": ", ".join(ops)})


def broken_gradients(ctx: Context) -> Measured:
    """Zero, NaN or infinite gradients of the loss −`metrics.margin`."""
    xt = torch.from_numpy(ctx.x).float().requires_grad_(True)
    loss = -metrics.margin(ctx.model.torch_logits(xt), torch.from_numpy(ctx.y))
    (grad,) = torch.autograd.grad(loss.sum(), xt)
    flat = grad.flatten(1)
    bad = (~torch.isfinite(flat).all(dim=1)) | (flat.abs().amax(dim=1) == 0)
    return Measured({"fraction": float(bad.float().mean())}, samples=torch.nonzero(bad).flatten().tolist())


def weak_vs_strong(ctx: Context) -> Measured:
    """Softmax-gradient attacks against logit attacks at the same L∞ ε."""
    p = ctx.probes
    weak = max(p["fgsm-ce"].success_rate, p["pgd-ce"].success_rate)
    strong_rates = {"pgd-dlr": p["pgd-dlr"].success_rate, "pgd-margin": p["pgd-margin"].success_rate}
    for r in ctx.results:
        if r.norm == "linf" and r.minimal_norm and len(r.success):
            strong_rates[r.attack] = float(r.within(ctx.eps).mean())
    strong = max(strong_rates.values())
    failed_weak = ~(p["fgsm-ce"].success | p["pgd-ce"].success) & (p["pgd-dlr"].success | p["pgd-margin"].success)
    evidence: dict[str, Any] = {"epsilon_linf": ctx.eps, "fgsm_ce": p["fgsm-ce"].success_rate,
                                "pgd_ce": p["pgd-ce"].success_rate,
                                **{k.replace("-", "_"): v for k, v in strong_rates.items()}, "gap": strong - weak}
    return Measured(evidence, metrics={"strong": strong, "weak": weak}, samples=np.flatnonzero(failed_weak).tolist())


def one_step_vs_iterative(ctx: Context) -> Measured:
    return Measured({"fgsm_ce": ctx.probes["fgsm-ce"].success_rate, "pgd_ce": ctx.probes["pgd-ce"].success_rate})


def success_over_epsilon(ctx: Context) -> Measured:
    curve = [ctx.probes[k].success_rate for k in ("pgd-dlr-eps/4", "pgd-dlr-eps/2", "pgd-dlr")]
    return Measured({"epsilons": [ctx.eps / 4, ctx.eps / 2, ctx.eps], "pgd_dlr": curve},
                    metrics={"at_quarter": curve[0], "at_half": curve[1], "at_full": curve[2]})


def doubled_steps(ctx: Context) -> Measured:
    return Measured({"pgd_dlr": ctx.probes["pgd-dlr"].success_rate,
                     "pgd_dlr_doubled": ctx.probes["pgd-dlr-2x"].success_rate})


def unbounded(ctx: Context) -> Measured:
    """PGD with ε = the whole input range, and the untargeted minimal-norm results given (they
    search without a bound; a capped one such as JSMA still witnesses what is reachable)."""
    probe = ctx.full_range_probe
    rates = {"pgd_margin_full_range": probe.success_rate}
    for r in ctx.results:
        if r.minimal_norm and r.targets is None and len(r.success):
            rates[r.attack.replace("-", "_")] = r.success_rate
    return Measured({**rates, "steps": ctx.budget.steps}, metrics={"rate": max(rates.values())},
                    samples=np.flatnonzero(~probe.success).tolist())


def shattered(ctx: Context) -> Measured:
    """The discontinuity scan along the FGSM direction (a seeded random sign where there is no
    replica or no gradient), ε long in L∞, and the gradient's first-order prediction error."""
    model, x, y = ctx.model, ctx.x, ctx.y
    lo, hi = model.input_range
    rng = np.random.default_rng(ctx.seed)
    direction = rng.choice(np.array([-1.0, 1.0], dtype=x.dtype), size=x.shape)
    linearity = None
    if model.replica is not None:
        grad, linearity = ctx.gradient_and_linearity
        usable = np.abs(grad).reshape(len(x), -1).max(axis=1) > 0
        direction[usable] = np.sign(grad[usable])
    scan = scan_for_jumps(model, x, y, (ctx.eps * direction).astype(x.dtype), pieces=DISCONTINUITY_PIECES,
                          halvings=DISCONTINUITY_HALVINGS)
    jump = (scan.ratio >= DISCONTINUITY_RATIO) & (scan.final > DISCONTINUITY_FLOOR * (1 + scan.loss_scale))
    fraction = float(jump.mean())
    evidence: dict[str, Any] = {
        "samples_with_jump": int(jump.sum()), "samples": len(x), "jump_fraction": fraction,
        "median_jump": float(np.median(scan.final[jump])) if jump.any() else 0.0,
        "median_loss_scale": float(np.median(scan.loss_scale)),
        "median_change_ratio": float(np.median(scan.ratio)), "halvings": scan.halvings,
        "continuous_ratio": 2.0 ** -scan.halvings, "path_linf": ctx.eps,
    }
    if linearity is not None:
        evidence["median_linearity_error"] = linearity
        evidence["linearity_step"] = LINEARITY_STEP * (hi - lo)
    headline = (f"The loss jumps along the attack path on {fraction:.0%} of the samples" if jump.any()
                else "Gradients do not predict the loss even a tiny step away")
    return Measured(evidence, text={"headline": headline}, samples=np.flatnonzero(jump).tolist())


def gradient_free(ctx: Context) -> Measured:
    """Random noise and Square Attack (oracle only) against the gradient attacks' failures."""
    failed = ctx.gradient_failures
    noise = ctx.noise()
    rows = np.flatnonzero(failed & ~noise.success)
    square_success = np.zeros(len(ctx.x), dtype=bool)
    if len(rows):
        square_success[rows] = ctx.square(rows).success
    beaten = failed & (noise.success | square_success)
    evidence = {"epsilon_linf": ctx.eps, "gradient_failed": int(failed.sum()),
                "noise_success": int(noise.success.sum()),
                "square_success_where_gradient_failed": int(square_success.sum()), "beaten": int(beaten.sum()),
                "samples": len(ctx.x)}
    return Measured(evidence, metrics={"beaten_fraction": float(beaten.mean())},
                    samples=np.flatnonzero(beaten).tolist())


def _traced(result: AttackResult) -> np.ndarray | None:
    """The loss trace the Pintor et al. indicators read (None when the attack recorded none)."""
    return result.loss_trace if result.loss_trace is not None and len(result.success) else None


def silent_success(result: AttackResult) -> Measured | None:
    """The replica saw the objective reach success but no adversarial example came back (attacks
    whose trace is such an objective: the `objective_trace` trait)."""
    trace = _traced(result)
    if trace is None or not result.objective_trace:
        return None
    finite = np.where(np.isfinite(trace), trace, np.inf)
    reached = np.nanmin(finite, axis=1) <= 0 if trace.shape[1] else np.zeros(len(trace), bool)
    silent = reached[: len(result.success)] & ~result.success
    return Measured({"attack": result.attack, "samples_affected": int(silent.sum())},
                    samples=np.flatnonzero(silent).tolist())


def incomplete_optimisation(result: AttackResult) -> Measured | None:
    """Failed samples whose normalised loss was still moving over the last 10 recorded steps."""
    trace = _traced(result)
    if trace is None:
        return None
    failed = ~result.success[: len(trace)]
    if not failed.any() or trace.shape[1] < 10:
        return None
    rows = trace[failed]
    span = np.nanmax(rows, axis=1) - np.nanmin(rows, axis=1)
    last = rows[:, -10:]
    moving = np.abs(last[:, -1] - last[:, 0]) / np.maximum(span, 1e-12) > INCOMPLETE_OPTIMISATION
    moving &= np.isfinite(last).all(axis=1)
    return Measured({"attack": result.attack, "failed": int(failed.sum()), "still_moving": int(moving.sum()),
                     "threshold": INCOMPLETE_OPTIMISATION}, metrics={"moving_fraction": float(moving.mean())})


def replica_disagreement(result: AttackResult) -> Measured | None:
    if _traced(result) is None:
        return None
    return Measured({"attack": result.attack, "disagreements": result.replica_disagreements},
                    metrics={"candidates": float(len(result.success))})
