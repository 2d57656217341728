"""Hand-made sweep directories: report.json, .hydra/config.yaml and multirun.yaml as
`nas-hw search -m` writes them, with numbers chosen by the test (no search is run)."""
import json
import os

import yaml

#: A tiny mobilenet space (2 choice groups of kernels 3, 5 x expansions 1, 3; the second with zero).
SPACE = {"_target_": "nas_hw.search.spaces.MobileNetSpace", "stem_channels": 4, "stage_channels": [6],
         "stage_blocks": [2], "stage_strides": [1], "kernels": [3, 5], "expansions": [1, 3], "zero": True,
         "dropout": 0.0}
NAMES = [["ir_k3_e1", "ir_k3_e3", "ir_k5_e1", "ir_k5_e3"], ["ir_k3_e1", "ir_k3_e3", "ir_k5_e1", "ir_k5_e3", "zero"]]
SHAPE = [1, 1, 8, 8]


def write_run(run_dir, *, seed, choices, test_acc, valid_acc=None, latency_ms=1.0, weight=None, baseline=None,
              data="digits", algorithm="darts"):
    """One run directory; returns its path."""
    os.makedirs(os.path.join(run_dir, ".hydra"), exist_ok=True)
    report = {
        "algorithm": baseline["kind"] if baseline else algorithm, "baseline": baseline,
        "space": SPACE["_target_"], "data": data, "n_classes": 10, "seed": seed,
        "latency_weight": weight, "deploy_input_shape": SHAPE, "ext_name": "cpu", "choices": list(choices),
        "candidates": [NAMES[g][c] for g, c in enumerate(choices)], "estimated_latency_ms": latency_ms,
        "true_latency_ms": None, "table_fingerprint": "cpu|fake", "param_bytes": 1000 * (1 + sum(choices)),
        "flops": 1, "search_valid_acc": None, "valid_acc": test_acc if valid_acc is None else valid_acc,
        "test_acc": test_acc, "total_time_s": 60.0, "finished_utc": "2026-12-01 10:00 UTC", "load_avg_1min": 2.5,
    }
    with open(os.path.join(run_dir, "report.json"), "w") as f:
        json.dump(report, f)
    cfg = {"space": SPACE, "device": {"_target_": "nas_hw.measure.device.Device", "ext_name": "cpu",
                                      "device_id": 0, "type_config": "float"},
           "data": {"_target_": "nas_hw.search.datasets.load_dataset", "name": data}, "seed": seed}
    with open(os.path.join(run_dir, ".hydra", "config.yaml"), "w") as f:
        yaml.safe_dump(cfg, f)
    return run_dir


def write_multirun(sweep_dir, task_overrides):
    os.makedirs(sweep_dir, exist_ok=True)
    with open(os.path.join(sweep_dir, "multirun.yaml"), "w") as f:
        yaml.safe_dump({"hydra": {"overrides": {"hydra": ["hydra.mode=MULTIRUN"], "task": list(task_overrides)}}}, f)


def lat(choices):
    """A made-up latency that grows with the candidate index (the same network, the same latency)."""
    return 0.1 + 0.05 * choices[0] + 0.04 * (choices[1] % 4) + (0.0 if choices[1] == 4 else 0.02)


def make_sweep(root, seeds=(0, 1, 2, 3, 4), search_acc=None, random_acc=None, n_draws=4):
    """Three multiruns under ``root``: searches with latency=none (weight 0) and at weight 0.5, random
    search, the uniform family.

    ``search_acc(weight, seed)`` and ``random_acc(draw, seed, choices)`` give test accuracies."""
    search_acc = search_acc or (lambda w, s: 0.90 - 0.01 * w + 0.001 * s)
    random_acc = random_acc or (lambda d, s, c: 0.80 + 0.01 * c[0] + 0.001 * s)
    search = os.path.join(root, "search")
    write_multirun(search, ["latency.weight=0.5", "seed=" + ",".join(map(str, seeds))])  # + latency=none
    job = 0
    for w, choices in ((0.0, [3, 3]), (0.5, [0, 4])):
        for s in seeds:
            write_run(os.path.join(search, str(job)), seed=s, choices=choices, weight=w or None,  # 0: latency=none
                      test_acc=search_acc(w, s), latency_ms=lat(choices))
            job += 1
    rnd = os.path.join(root, "random")
    write_multirun(rnd, ["search=random", f"search.draw=range(0,{n_draws})", "latency=none",
                         "seed=" + ",".join(map(str, seeds))])
    job = 0
    for s in seeds:
        for d in range(n_draws):
            choices = [(s + d) % 4, (s * d + 1) % 5]
            write_run(os.path.join(rnd, str(job)), seed=s, choices=choices, baseline={"kind": "random", "draw": d},
                      test_acc=random_acc(d, s, choices), latency_ms=lat(choices))
            job += 1
    uni = os.path.join(root, "uniform")
    write_multirun(uni, ["search=uniform", "search.candidate=ir_k3_e1,ir_k5_e3", "latency=none",
                         "seed=" + ",".join(map(str, seeds))])
    job = 0
    for i, name in ((0, "ir_k3_e1"), (3, "ir_k5_e3")):
        for s in seeds:
            write_run(os.path.join(uni, str(job)), seed=s, choices=[i, i],
                      baseline={"kind": "uniform", "candidate": name},
                      test_acc=0.7 + 0.05 * i + 0.002 * s, latency_ms=lat([i, i]))
            job += 1
    return [search, rnd, uni]
