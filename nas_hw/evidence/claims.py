"""The sentences of a sweep's claims, written from :func:`nas_hw.evidence.analysis.analyse`'s
numbers: what was compared, how, the estimate with its interval, and the verdict. Nothing here
is computed; every figure comes from the analysis."""
from .analysis import ALPHA, GOAL_ACC_COST_PT, GOAL_LATENCY_DROP_PCT

SOURCE_WORDS = {
    "remeasured_latency_ms": "measured latency (every derived network re-timed side by side, interleaved, "
                             "in the report step)",
    "true_latency_ms": "latency each run measured at its own end (not side by side: the load differed "
                       "between runs)",
    "estimated_latency_ms": "estimated latency (the candidate table; no run was measured)",
}


def pct(level):
    return f"{100 * level:g}%"


def ci(interval, spec="+.1f"):
    return f"[{format(interval[0], spec)}, {format(interval[1], spec)}]"


def seeds_text(seeds):
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(str(s) for s in seeds)})"


def goal_latency(task):
    """The sentences on goal 1: some latency weight gives >= 30% lower latency than weight 0 at
    <= 1 pt test-accuracy cost."""
    changes, level = task["changes"], task["level"]
    head = (f"**Goal 1** (some `latency.weight` gives >= {GOAL_LATENCY_DROP_PCT:g}% lower latency than "
            f"weight 0 at <= {GOAL_ACC_COST_PT:g} pt test-accuracy cost).")
    if not changes:
        return [head + " Not tested: the sweep has no weight-0 search to compare with."]
    lines = [head + f" Changes of the median over seeds against weight 0, {pct(level)} paired bootstrap "
             f"intervals (seeds resampled, {task['n_boot']} resamples):"]
    for c in changes:
        verdict = ("meets the goal, both intervals inside the bounds" if c["goal_ci"] else
                   "meets the goal in the point estimates, but the intervals reach beyond the bounds"
                   if c["goal_point"] else "does not meet the goal")
        lines.append(f"- `{c['setting']}`: latency {c['latency_change_pct']['value']:+.1f}% "
                     f"{ci(c['latency_change_pct']['ci'])}, test accuracy {c['acc_change_pt']['value']:+.2f} pt "
                     f"{ci(c['acc_change_pt']['ci'], '+.2f')}, {seeds_text(c['seeds'])}: {verdict}.")
    point = [c["setting"] for c in changes if c["goal_point"]]
    sure = [c["setting"] for c in changes if c["goal_ci"]]
    if sure:
        verdict = f"shown, with both {pct(level)} intervals inside the bounds, by " + ", ".join(f"`{s}`" for s in sure)
    elif point:
        verdict = ("shown by the point estimates only (" + ", ".join(f"`{s}`" for s in point)
                   + f"); the {pct(level)} intervals do not rule out missing it")
    else:
        verdict = "not shown: no weight meets it, even in the point estimates"
    lines.append(f"- Verdict on goal 1: {verdict}.")
    return lines


def goal_random(task):
    """The sentences on goal 2: the latency-aware search is at least as accurate as the best
    random-search architecture at equal latency; with the stated test."""
    rnd, level = task["random"], task["level"]
    head = ("**Goal 2** (the latency-aware search is at least as accurate as the best random-search "
            "architecture at equal latency).")
    if rnd is None:
        return [head + " Not tested: the sweep has no random-search runs (or no search)."]
    draws = sorted(set(rnd["n_draws"].values()))
    draws_text = "/".join(str(d) for d in draws)
    lines = [head + (
        f" Test: every search run of seed s is paired with the random-search pick of the same seed at its "
        f"latency: among the {draws_text} architectures drawn uniformly for seed s and retrained, the one with "
        f"the best retrained validation accuracy whose latency is at most the search's. The difference is "
        f"search test accuracy minus the pick's. H0: search and pick are exchangeable (every sign of the "
        f"differences equally likely); H1: the search is more accurate; one-sided paired sign-flip "
        f"(permutation) test of the mean difference, exact over all sign patterns; {pct(level)} bootstrap "
        f"interval of the mean difference; significance level {ALPHA:g}. The latency-aware weights (> 0) are "
        f"pooled as one mean difference per seed (the primary test); each weight is also tested alone.")]
    pooled = rnd["pooled"]
    if pooled is not None:
        lines.append(_test_line(f"pooled over weights {', '.join(f'{w:g}' for w in pooled['weights'])} "
                                f"({seeds_text(pooled['seeds'])})", pooled))
    for w, t in rnd["per_weight"].items():
        lines.append(_test_line(f"latency.weight={w:g}", t))
    if rnd["unmatched"]:
        lines.append(f"- {len(rnd['unmatched'])} search run(s) had no random architecture as fast "
                     "(left out of the pairs): " + ", ".join(f"{u['setting']} seed {u['seed']}"
                                                             for u in rnd["unmatched"]) + ".")
    if pooled is None:
        verdict = "not tested: no latency-aware search run had a random architecture as fast"
    else:
        as_good = pooled["mean_pt"] >= 0
        better = pooled["p_value"] < ALPHA
        verdict = (("shown: the search is at least as accurate in the point estimate"
                    if as_good else "not shown: the search is less accurate in the point estimate")
                   + (f", and significantly more accurate (p = {pooled['p_value']:.3f} < {ALPHA:g})" if better
                      else f"; the test does not show it more accurate (p = {pooled['p_value']:.3f})")
                   + (f"; the {pct(level)} interval {ci(pooled['ci_mean_pt'], '+.2f')} pt includes "
                      + ("negative" if pooled['ci_mean_pt'][0] < 0 else "only non-negative")
                      + " differences"))
    lines.append(f"- Verdict on goal 2: {verdict}.")
    return lines


def _test_line(label, t):
    note = "" if t["exact"] else " (Monte Carlo)"
    return (f"- {label}: mean difference {t['mean_pt']:+.2f} pt {ci(t['ci_mean_pt'], '+.2f')}, median "
            f"{t['median_pt']:+.2f} pt, search more / equally / less accurate in {t['wins']} / {t['ties']} / "
            f"{t['losses']} of {t['n']} pairs, one-sided p = {t['p_value']:.3f}{note} (smallest possible with "
            f"{t['n']} pairs: {t['min_p_value']:.3f}).")


def task_spread(task, name):
    """The sentence on whether architectures differ measurably on this task."""
    u = task["uniform"]
    if u is None:
        return [f"**Do architectures differ on {name}?** Not tested: the sweep has fewer than two members of "
                "the uniform family."]
    verdict = ("yes, beyond seed noise" if u["measurable"] else
               "not beyond seed noise")
    return [f"**Do architectures differ on {name}?** {verdict.capitalize()}: the uniform family's fastest member "
            f"(`{u['smallest']}` in every block) scores {u['smallest_acc']:.2f}% and its slowest (`{u['largest']}`) "
            f"{u['largest_acc']:.2f}% test accuracy (medians over {seeds_text(u['seeds'])}); paired difference "
            f"{u['diff_median_pt']:+.2f} pt {ci(u['diff_ci_pt'], '+.2f')} ({pct(task['level'])} bootstrap), "
            f"one-sided sign-flip p = {u['p_value']:.3f}; the larger seed-to-seed standard deviation of the two "
            f"is {u['seed_sd_pt']:.2f} pt. (Criterion: the interval excludes 0 and the difference exceeds twice "
            "that standard deviation.)"]


def claims(task, name):
    """Every claim sentence of one task, as markdown lines."""
    lines = [f"Latency used throughout: {SOURCE_WORDS[task['source']]}."]
    lines += [""] + task_spread(task, name)
    lines += [""] + goal_latency(task)
    lines += [""] + goal_random(task)
    return lines
