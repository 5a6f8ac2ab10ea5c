"""The gradient-masking and attack-failure checks: one row each, in the order they run.

Severity follows evidence: "error" means measured evidence that gradient-based verdicts on
this model cannot be trusted; "warning" is a symptom worth a look; "info" is context. The
README's finding table lists exactly these ids (tests/test_diagnostics.py checks it).

References for the checks and their thresholds:
- Papernot et al. 2016 (defensive distillation) and Carlini & Wagner 2016, "Defensive
  distillation is not robust to adversarial examples": vanishing softmax gradients.
- Athalye, Carlini & Wagner, "Obfuscated Gradients Give a False Sense of Security" (ICML 2018),
  §3.1: one-step beats iterative, unbounded attacks below 100%, black-box beats white-box,
  success not growing with ε; §4.1 shattered gradients; stochastic gradients (EOT).
- Croce & Hein 2020 (AutoAttack): DLR loss as the scale-invariant strong probe.
- Pintor et al., "Indicators of Attack Failure" (NeurIPS 2022): silent success, incomplete
  optimisation, unconstrained-attack failure.
"""

from __future__ import annotations

from robustcheck.diagnostics import measurements as m
from robustcheck.diagnostics.table import DiagnosticCheck, Rule

#: Shown when there is no correctly classified sample at all (no check can run).
NO_SAMPLES = DiagnosticCheck(
    "no-samples", lambda ctx: None, (Rule.always("warning"),), "No correctly classified samples to diagnose",
    "Every diagnostic needs samples the model classifies correctly.",
    "Check the dataset, the input range and the layout.")

CHECKS: tuple[DiagnosticCheck, ...] = (
    DiagnosticCheck(
        "randomized-model", m.randomness, (Rule("error", "randomised", ">=", 1),),
        "The model is randomised: the same input gives different outputs",
        "A stochastic defence hides the gradient behind noise: single-sample gradients point nowhere and an attack "
        "that fails once may succeed on the next call.",
        "Attack the expectation over the randomness (EOT: average gradients over many draws), and judge success on "
        "repeated oracle calls."),
    DiagnosticCheck(
        # Float32 probabilities saturated at 1.0 carry no information for any attack.
        "probability-output", m.probability_output,
        (Rule("error", "saturated_fraction", ">=", 0.5), Rule.always("warning")),
        "The model outputs probabilities; no logits to attack",
        "Attacks run on log-probabilities. Where float32 probabilities saturate at 1.0 the information "
        "is gone before any attack sees it, so gradient attacks stall.",
        "Export the model without its softmax (or name the logits output with `output =`)."),
    DiagnosticCheck(
        "softmax-head", m.softmax_head, (Rule("warning", "saturated_fraction", ">=", 0.5), Rule.always("info")),
        "Trailing {head} head cut; attacks use its input",
        {"warning": "robustcheck attacks the logits, not the probabilities (foolbox issue #618). The softmax is "
                    "saturated here: attacks that follow its gradients see none.",
         "info": "robustcheck attacks the logits, not the probabilities (foolbox issue #618). The logits are not "
                 "saturated; this is information only."},
        "Nothing to do for robustcheck; for other tools, export the logits."),
    DiagnosticCheck(
        "no-replica", m.no_replica, (Rule.always("warning"),),
        "No differentiable replica: gradient checks skipped",
        "Gradient-based attacks cannot run on this model; only the gradient-free probes below judged it.",
        "Support the missing operators, or rely on black-box attacks."),
    DiagnosticCheck(
        # Fraction of samples with an exactly-zero float32 cross-entropy input gradient (Papernot 2016;
        # Carlini & Wagner 2016) above which softmax-gradient attacks are blind.
        "vanishing-softmax-gradients", m.softmax_gradients,
        (Rule("error", "zero_gradient_fraction", ">=", 0.5), Rule("warning", "zero_gradient_fraction", ">=", 0.1)),
        "Cross-entropy gradients are exactly zero on {zero_gradient_fraction:.0%} of the samples",
        "The logits are so large that the float32 softmax saturates: its gradient underflows to zero, so "
        "FGSM, PGD with cross-entropy and JSMA find nothing although the model is not robust (defensive "
        "distillation's effect, Carlini & Wagner 2016).",
        "Judge robustness with attacks on the logits: C&W (objective f6), PGD with the DLR or margin loss.",
        needs_replica=True),
    DiagnosticCheck(
        "nondifferentiable-ops", m.nondifferentiable_ops,
        (Rule("error", "severe_ops", ">", 0), Rule.always("warning")),
        "The graph uses non-differentiable operators: {operator_list}",
        "Rounding, quantisation, sign and random operators give zero or meaningless gradients "
        "(shattered gradients, Athalye et al. 2018): gradient attacks on this graph are blind.",
        "Attack through a differentiable approximation (BPDA: identity in the backward pass) or with gradient-free "
        "attacks.", needs_replica=True),
    DiagnosticCheck(
        "broken-gradients", m.broken_gradients, (Rule("error", "fraction", ">=", 0.5),),
        "Logit-margin gradients are zero or not finite on {fraction:.0%} of the samples",
        "Even attacks on the logits get no gradient signal here.",
        "Use gradient-free attacks, or BPDA through the operators that block the gradient.", needs_replica=True),
    DiagnosticCheck(
        # Success-rate gap strong − weak at the same ε (Athalye et al. 2018 §3.1; the distillation signature).
        "weak-vs-strong", m.weak_vs_strong, (Rule("error", "gap", ">=", 0.5), Rule("warning", "gap", ">=", 0.2)),
        "Logit attacks succeed on {strong:.0%}, softmax-gradient attacks on {weak:.0%} at the same ε",
        "At the same L∞ budget, attacks that follow cross-entropy gradients fail where attacks on the "
        "logits succeed: the defence hides the gradient rather than removing the adversarial examples (the "
        "signature of defensive distillation).",
        "Report robustness from the strong attacks (C&W, PGD-DLR/margin), never from FGSM/PGD-CE/JSMA.",
        needs_replica=True),
    DiagnosticCheck(
        "one-step-beats-iterative", m.one_step_vs_iterative, (Rule("error", "fgsm_ce", ">", 0.1, plus="pgd_ce"),),
        "FGSM ({fgsm_ce:.0%}) beats PGD ({pgd_ce:.0%}) with the same loss",
        "An iterative attack can always take FGSM's step; when it does worse the gradients mislead locally "
        "(Athalye et al. 2018 §3.1).", "Use gradient-free attacks and BPDA/EOT.", needs_replica=True),
    DiagnosticCheck(
        "success-not-monotonic-in-epsilon", m.success_over_epsilon,
        (Rule("error", "at_half", "<", -0.1, plus="at_quarter"), Rule("error", "at_full", "<", -0.1, plus="at_half")),
        "Attack success falls as ε grows",
        "A larger budget contains every smaller one: success that drops with ε means the attack is failing, not "
        "the model resisting.", "Increase steps/restarts; use gradient-free attacks.", needs_replica=True),
    DiagnosticCheck(
        "not-converged", m.doubled_steps, (Rule("warning", "pgd_dlr_doubled", ">", 0.1, plus="pgd_dlr"),),
        "Doubling the iterations raises attack success",
        "The attacks had not converged at the configured budget.", "Raise the budget (profile thorough).",
        needs_replica=True),
    DiagnosticCheck(
        # With no bound some adversarial example always exists; below 95% the optimisation is blocked.
        "unbounded-attack-fails", m.unbounded, (Rule("error", "rate", "<", 0.95), Rule("warning", "rate", "<", 1.0)),
        "Attacks with no distortion bound reach only {rate:.0%} of the samples",
        "With no bound on the distortion some adversarial example always exists (any image of another class); an "
        "unbounded attack that fails shows the optimisation is blocked (Athalye et al. 2018 §3.1).",
        "Do not trust bounded verdicts; use gradient-free attacks and check for masking.", needs_replica=True),
    DiagnosticCheck(
        # Fractions of samples whose loss jumps (measurements.DISCONTINUITY_*) for a warning and an error;
        # a median first-order prediction error above 0.5 is an error too (Athalye et al. 2018 §4.1).
        "shattered-gradients", m.shattered,
        (Rule("error", "jump_fraction", ">=", 0.25), Rule("error", "median_linearity_error", ">", 0.5),
         Rule("warning", "jump_fraction", ">=", 0.05)),
        "{headline}",
        "The model's output is discontinuous (or wildly non-linear) at the scale of one attack step: halving the "
        "interval {halvings} times leaves a jump of the margin loss where a continuous function would shrink "
        "the change 2^-halvings-fold. Gradients describe the model only up to the next jump, so gradient attacks "
        "can fail on a model that is not robust (shattered gradients, Athalye et al. 2018).",
        "Do not trust gradient-based verdicts here: use gradient-free attacks (Square Attack), BPDA through the "
        "discontinuous operators, or attack a smooth surrogate and transfer.",
        skip_if=("randomized-model",)),  # noise would read as jumps
    DiagnosticCheck(
        # Fraction of samples where gradient-free probes succeed and gradient attacks failed (Athalye §3.1).
        "gradient-free-beats-gradient", m.gradient_free,
        (Rule("error", "beaten_fraction", ">=", 0.05), Rule("warning", "beaten", ">", 0)),
        "Gradient-free probes break {beaten} sample(s) the gradient attacks could not",
        "Random search that only queries the model succeeds where gradient attacks failed: the gradients "
        "are masked, not the adversarial examples absent (Athalye et al. 2018 §3.1).",
        "Use black-box attacks (Square Attack) in the evaluation; look for shattered or stochastic gradients.",
        needs_replica=True),  # without a replica no gradient attack ran: nothing was "beaten"
    DiagnosticCheck(
        "silent-success", m.silent_success, (Rule("warning", "samples_affected", ">", 0),),
        "{attack}: success reached during optimisation but not returned",
        "The attack crossed the decision boundary on the replica yet returned a non-adversarial point "
        "(a replica/oracle mismatch or a bookkeeping failure).",
        "Check replica parity; keep the best iterate.", per_attack=True),
    DiagnosticCheck(
        # Pintor et al. 2022: at least 20% of the failed samples still moving.
        "incomplete-optimisation", m.incomplete_optimisation, (Rule("warning", "moving_fraction", ">=", 0.2),),
        "{attack}: the loss was still moving when the attack stopped ({still_moving} failed samples)",
        "The attack stopped before converging on samples it failed on (Pintor et al. 2022).",
        "Raise the iterations (profile thorough) before trusting these failures.", per_attack=True),
    DiagnosticCheck(
        # Replica/oracle label disagreements among the attack's candidates above 5%.
        "replica-disagreement", m.replica_disagreement,
        (Rule("warning", "disagreements", ">", 0.05, times="candidates"),),
        "{attack}: the replica and onnxruntime disagree on {disagreements} candidates",
        "Gradients come from a replica that does not match the oracle near these inputs.",
        "Report the operator mismatch; verdicts stay the oracle's.", per_attack=True),
)
