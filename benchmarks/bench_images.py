"""Image benchmark on scikit-learn's 8x8 digits (docs/images.md).

1. Per family at its defaults: fit time, Fréchet distance, precision/recall, TSTR vs TRTR accuracy and the
   gate's verdict at generation 0.
2. A `replace` chain against `accumulate` with a family the gate approves at generation 0 (DDPM by default),
   twice: with the guard observing (every batch is made and scored, refused or not, so replace's collapse is
   measured) and enforced (a chain stops at its first refused batch, as the Dagster graph does). Each
   generation gets the same optimisation budget: accumulate's growing pool is trained for
   round(epochs * n / pool) epochs (at least 1), so its fits cost what replace's do and the comparison is of
   pools, not of training time. Fits are seeded and sampling is bitwise reproducible, so a generation whose
   pool is the same bytes as one already fitted (generation 0 of both policies; every enforced generation up
   to the stop) is taken from that fit, not refitted: the enforced run costs no extra fits.

Writes <out>/images-collapse.png (the curves against real batches' noise and the gate's limit) and
<out>/images-collapse.md (the tables); JSON lines on stdout as it goes.

    nice -n 10 env PYTHONPATH=$PWD OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_images.py
    nice -n 10 env PYTHONPATH=$PWD OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_images.py --quick
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from ouroboros.images.chain import build_pool
from ouroboros.images.config import ImageGateConfig
from ouroboros.images.data import ImageSet, load_source
from ouroboros.images.gate import ImageGate
from ouroboros.images.gate import metrics as M
from ouroboros.images.gate.judge import TESTS
from ouroboros.images.generators import create
from ouroboros.images.split import split_images
from ouroboros.report import FAMILY_COLOURS, POLICY_STYLES

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ("replace", "accumulate")
# the curves drawn, with what each means on its axis
CURVES = {"fidelity.frechet_distance": "Fréchet distance (feature space)",
          "fidelity.recall": "recall (share of real modes covered)",
          "collapse.min_class_diversity": "least within-class diversity / real",
          "collapse.intensity_variance_low": "pixel-intensity variance / real",
          "fidelity.utility_accuracy": "TSTR accuracy on real_holdout",
          "fidelity.precision": "precision"}


def family_row(gate: ImageGate, family: str, train: ImageSet, holdout: ImageSet, n: int, params: dict) -> dict:
    gen = create(family, seed=0, **params)
    started = time.perf_counter()
    gen.fit(train)
    fit = time.perf_counter() - started
    batch = gen.sample(n, seed=7919)
    v = gate.evaluate(batch)
    trtr = M.utility(train.flat(), train.labels, holdout.flat(), holdout.labels)
    return {"family": family, "fit_s": round(fit, 1), "fd": round(v.scores["fidelity.frechet_distance"], 3),
            "fd_real": round(gate.null(n)["fidelity.frechet_distance"]["mean"], 3),
            "precision": round(v.scores["fidelity.precision"], 3), "recall": round(v.scores["fidelity.recall"], 3),
            "tstr": round(v.scores["fidelity.utility_accuracy"], 3), "trtr": round(trtr, 3),
            "verdict": "pass" if v.passed else "FAIL", "failed": v.failed()}


def _pool_key(family: str, seed: int, params: dict, pool: ImageSet) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps([family, seed, sorted(params.items())]).encode())
    h.update(np.ascontiguousarray(pool.images).tobytes())
    h.update(np.ascontiguousarray(pool.labels).tobytes())
    return h.hexdigest()


class Fits:
    """Generation k's batch and verdict by (family, seed, params, pool bytes): the same inputs give the same
    bytes (seeded fit, bitwise-reproducible sampling), so a repeat is looked up, not refitted."""

    def __init__(self, gate: ImageGate, family: str, n: int) -> None:
        self.gate, self.family, self.n, self.memo, self.fit_seconds = gate, family, n, {}, 0.0

    def __call__(self, k: int, pool: ImageSet, params: dict):
        key = _pool_key(self.family, k, params, pool)
        if key not in self.memo:
            started = time.perf_counter()
            batch = create(self.family, seed=k, **params).fit(pool).sample(self.n, seed=7919 + k)
            seconds = time.perf_counter() - started
            self.fit_seconds += seconds
            self.memo[key] = (batch, self.gate.evaluate(batch), seconds)
        return self.memo[key]


def chain(fits: Fits, policy: str, generations: int, train: ImageSet, epochs: int, enforce: bool) -> list[dict]:
    """One chain; enforced, it stops at its first refused batch (no later generation is made)."""
    batches, rows = [], []
    for k in range(generations):
        pool = build_pool(policy, k, train, batches, seed=0)
        params = {"epochs": max(1, round(epochs * len(train) / len(pool)))}  # the same steps per generation
        batch, v, seconds = fits(k, pool, params)
        batches.append(batch)
        rows.append({"policy": policy, "guard": "enforced" if enforce else "observing", "generation": k,
                     "pool_images": len(pool), "epochs": params["epochs"], "fit_sample_s": round(seconds, 1),
                     "verdict": "pass" if v.passed else "FAIL", "failed": v.failed(),
                     **{name: round(v.scores[name], 4) for name in CURVES}})
        print(json.dumps(rows[-1]), flush=True)
        if enforce and not v.passed:
            break
    return rows


def limits(gate: ImageGate, n: int) -> dict[str, tuple[float, float]]:
    """Per curve: (real batches' mean, the limit a batch is refused beyond: beyond the noise AND the effect
    limit, so the more extreme of the two), as judge.ImageGate.evaluate applies them."""
    null, out = gate.null(n), {}
    for name in CURVES:
        s, side = null[name], TESTS[name][1]
        effect = gate._effect_limit(name, s["mean"])
        if side == "upper":
            out[name] = (s["mean"], max(max(s["mean"] + gate.z * s["sd"], s["max"]), effect))
        else:
            out[name] = (s["mean"], min(min(s["mean"] - gate.z * s["sd"], s["min"]), effect))
    return out


def plot(observed: list[dict], stops: dict[str, int | None], bands: dict, family: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator

    cols, names = 3, list(CURVES)
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.4 * cols, 4.0 * rows), squeeze=False)
    last = max(r["generation"] for r in observed)
    legend: dict[str, object] = {}
    for ax, name in zip(axes.flat, names):
        mean, limit = bands[name]
        legend["real"] = ax.axhline(mean, color="grey", linewidth=1.5, zorder=0,
                                    label="fresh real batches of the same size (mean)")
        legend["limit"] = ax.axhline(limit, color="red", linestyle="--", linewidth=1.3, zorder=1,
                                     label="gate limit (refused beyond)")
        values = [mean, limit]
        for policy in POLICIES:
            part = [r for r in observed if r["policy"] == policy]
            xs, ys = [r["generation"] for r in part], [r[name] for r in part]
            values += ys
            legend[policy] = ax.plot(xs, ys, marker="o", ms=5, linewidth=2, color=FAMILY_COLOURS.get(family, "black"),
                                     linestyle=POLICY_STYLES[policy], label=f"{family} {policy} (guard observing)")[0]
            refused = [(r["generation"], r[name]) for r in part if r["verdict"] == "FAIL"]
            if refused:
                legend["refused"] = ax.scatter(*zip(*refused), marker="X", s=70, color="white", edgecolor="red",
                                               linewidths=1.2, zorder=4, label="batch refused by the gate")
            stop = stops.get(policy)
            if stop is not None:
                legend[f"stop_{policy}"] = ax.axvline(stop, color="black", linestyle=POLICY_STYLES[policy],
                                                      linewidth=1, alpha=0.6,
                                                      label=f"guard enforced: {policy} stops at g{stop}")
        low, high = min(values), max(values)
        pad = (high - low) * 0.12 or max(abs(high) * 0.05, 0.01)
        ax.set_ylim(low - pad, high + pad)
        ax.set_title(name, fontsize=10)
        ax.set_ylabel(CURVES[name], fontsize=9)
        ax.set_xlabel("generation")
        ax.set_xlim(-0.3, last + 0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    handles = list(legend.values())
    fig.legend(handles, [h.get_label() for h in handles], loc="lower center", ncol=min(4, len(handles)), fontsize=9,
               frameon=False)
    fig.suptitle(f"Image collapse on 8x8 digits: {family}, replace vs accumulate, against fresh real batches (grey) "
                 "and the gate's limit (red)", fontsize=11)
    fig.tight_layout(rect=(0, 0.035 * ((len(handles) + 3) // 4) + 0.01, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _short(failed: list[str], most: int = 3) -> str:
    """'frechet_distance, recall, precision +5 more': the tests that refused, without their check prefix."""
    names = [f.split(".", 1)[-1] for f in failed]
    return ", ".join(names[:most]) + (f" +{len(names) - most} more" if len(names) > most else "")


def markdown(families: list[dict], observed: list[dict], enforced: list[dict], bands: dict, family: str, n: int,
             generations: int, args: argparse.Namespace) -> str:
    lines = [f"# Image benchmark ({'quick smoke run' if args.quick else 'full run'})", "",
             f"`benchmarks/bench_images.py {' '.join(args.argv)}`; batch = {n} images, null draws "
             f"{args.null_draws}.", ""]
    if families:
        fd_real = families[0]["fd_real"]
        lines += ["## Generation 0 per family (defaults)", "",
                  f"| family | fit s | FD (real batches: {fd_real}) | precision | recall | TSTR | TRTR | gate |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['family']} | {r['fit_s']} | {r['fd']} | {r['precision']} | {r['recall']} | {r['tstr']} | "
                  f"{r['trtr']} | {r['verdict']}{' (' + _short(r['failed']) + ')' if r['failed'] else ''} |"
                  for r in families]
        lines.append("")
    if not observed:
        return "\n".join(lines)
    lines += [f"## {family} chains, {generations} generations, guard observing", "",
              "Fresh real batches of this size score (mean; gate limit): "
              + "; ".join(f"{n.split('.', 1)[1]} {m:.3g} ({lim:.3g})" for n, (m, lim) in bands.items()) + ".", ""]
    head = ["FD", "recall", "precision", "diversity", "variance", "TSTR", "gate"]
    keys = ["fidelity.frechet_distance", "fidelity.recall", "fidelity.precision", "collapse.min_class_diversity",
            "collapse.intensity_variance_low", "fidelity.utility_accuracy"]
    lines += ["| g | " + " | ".join(f"replace {h}" for h in head) + " | " + " | ".join(f"accumulate {h}" for h in head)
              + " |", "|---" * (1 + 2 * len(head)) + "|"]
    by = {(r["policy"], r["generation"]): r for r in observed}
    for k in range(generations):
        cells = [f"g{k}"]
        for policy in POLICIES:
            r = by.get((policy, k))
            cells += ([f"{r[key]:.3g}" for key in keys] + [r["verdict"] + (f" ({_short(r['failed'])})" if r["failed"] else "")]
                      if r else [""] * len(head))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for policy in POLICIES:
        part = [r for r in observed if r["policy"] == policy]
        first, end = part[0], part[-1]
        lines.append(f"- {policy}, observing: FD {first['fidelity.frechet_distance']:.3g} -> "
                     f"{end['fidelity.frechet_distance']:.3g} (x{end['fidelity.frechet_distance'] / first['fidelity.frechet_distance']:.2f}), "
                     f"recall {first['fidelity.recall']:.3g} -> {end['fidelity.recall']:.3g}, diversity "
                     f"{first['collapse.min_class_diversity']:.3g} -> {end['collapse.min_class_diversity']:.3g}, "
                     f"variance {first['collapse.intensity_variance_low']:.3g} -> "
                     f"{end['collapse.intensity_variance_low']:.3g}; refused "
                     f"{sum(r['verdict'] == 'FAIL' for r in part)} of {len(part)} batches.")
    lines += ["", "## Guard enforced (a chain stops at its first refused batch)", ""]
    for policy in POLICIES:
        part = [r for r in enforced if r["policy"] == policy]
        end = part[-1]
        lines.append(f"- {policy}: " + (f"stopped at g{end['generation']} (refused by {_short(end['failed'], 8)}); "
                                         f"g{end['generation'] + 1}.. not made" if end["verdict"] == "FAIL"
                                         else f"held all {len(part)} generations"))
    lines += ["", "![collapse curves](images-collapse.png)", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", default="ddpm,vae,gan", help="generation-0 rows ('' for none)")
    ap.add_argument("--generations", type=int, default=10)
    ap.add_argument("--chain-family", default="ddpm", help="ddpm or gan: approved at generation 0 (the VAE is not)")
    ap.add_argument("--chain-epochs", type=int, default=60, help="epochs of generation 0 (and of every replace fit)")
    ap.add_argument("--null-draws", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="folder for images-collapse.png/.md (default docs/; "
                    "--quick: benchmarks/out/images_quick/)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 generations, 3 epochs, 400-image batches, "
                    "20 null draws, small feature net, the DDPM alone at generation 0")
    args = ap.parse_args(argv)
    args.argv = argv if argv is not None else __import__("sys").argv[1:]
    torch.set_num_threads(args.threads)
    train, holdout = split_images(load_source("sklearn:digits"), 0.2, 0)
    if args.quick:
        args.generations, args.chain_epochs, args.null_draws = min(args.generations, 3), 3, 20
        gate_config = ImageGateConfig(null_draws=20, utility_draws=5, feature_epochs=5)
        n, family_params, families = 400, {"epochs": 3}, ["ddpm"]
    else:
        gate_config = ImageGateConfig(null_draws=args.null_draws)
        n, family_params, families = len(train), {}, list(filter(None, args.families.split(",")))
    out = args.out or (ROOT / "benchmarks" / "out" / "images_quick" if args.quick else ROOT / "docs")
    started = time.perf_counter()
    gate = ImageGate(train, holdout, gate_config)
    gate.null(n)
    print(json.dumps({"gate_and_null_s": round(time.perf_counter() - started, 1)}), flush=True)
    family_rows = []
    for family in families:
        family_rows.append(family_row(gate, family, train, holdout, n, family_params))
        print(json.dumps(family_rows[-1]), flush=True)
    observed, enforced, stops = [], [], {}
    if args.generations:
        fits = Fits(gate, args.chain_family, n)
        for policy in POLICIES:
            observed += chain(fits, policy, args.generations, train, args.chain_epochs, enforce=False)
        for policy in POLICIES:
            part = chain(fits, policy, args.generations, train, args.chain_epochs, enforce=True)
            enforced += part
            stops[policy] = part[-1]["generation"] if part[-1]["verdict"] == "FAIL" else None
        bands = limits(gate, n)
        plot(observed, stops, bands, args.chain_family, out / "images-collapse.png")
        print(json.dumps({"chain_fit_sample_s": round(fits.fit_seconds, 1), "stops": stops}), flush=True)
    else:
        bands = {}
    page = markdown(family_rows, observed, enforced, bands, args.chain_family, n, args.generations, args)
    page += f"\nTotal {time.perf_counter() - started:.0f} s.\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "images-collapse.md").write_text(page)
    print(page)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
