"""``daxsim microbench``: LATTester-style memory microbenchmark on a modelled device.

N threads issue ``--size``-byte loads, non-temporal stores or store+clwb, sequentially or
at random, on the device of ``--profile``. The command reports the idle latency (one thread,
one request outstanding, LATTester's latency test), the bandwidth of the N-thread run, the
write amplification at the media, and the 99th / 99.99th / 99.999th percentile latencies of
the N-thread run's 64 B requests. Deterministic for a given ``--seed``.

``--published [NAME ...]`` instead runs every point of the published FAST'20 curves
(:mod:`sim.timing.published`: one- and six-DIMM bandwidth by thread count and by access
size) on the profile and prints the model next to the measurement, the points the
parameters were fitted to marked ``fitted``.
"""

from __future__ import annotations

import argparse
import json

from sim.errors import InputError
from sim.timing.media import OPS, PATTERNS, simulate
from sim.timing.profiles import load_profile, profile_names

__all__ = ["configure", "main", "run_microbench"]


def _size(text: str) -> int:
    s = text.strip().lower()
    mult = 1
    for suf, m in (
        ("kib", 1 << 10),
        ("mib", 1 << 20),
        ("gib", 1 << 30),
        ("k", 1 << 10),
        ("m", 1 << 20),
        ("g", 1 << 30),
        ("b", 1),
    ):
        if s.endswith(suf):
            s, mult = s[: -len(suf)], m
            break
    try:
        v = int(s, 0) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a byte count: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return v


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``daxsim microbench``."""
    parser.add_argument(
        "--profile", default="optane-gen1", help="hardware profile (daxsim profiles)"
    )
    parser.add_argument("--op", choices=OPS, default="load", help="access instruction")
    parser.add_argument("--pattern", choices=PATTERNS, default="seq", help="address pattern")
    parser.add_argument(
        "--size", type=_size, default=256, help="access size in bytes (multiple of 64)"
    )
    parser.add_argument("--threads", type=int, default=1, help="issuing threads")
    parser.add_argument(
        "--dimms", type=int, default=None, help="DIMMs in the interleave set (1 = non-interleaved)"
    )
    parser.add_argument(
        "--region", type=_size, default=None, help="bytes the accesses are confined to"
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=None,
        help="64 B requests to simulate (default 200,000; with --published, per point, "
        "default sim.timing.published.STEADY_REQUESTS: steady state)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random pattern")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a profile parameter (repeatable)",
    )
    parser.add_argument(
        "--published",
        nargs="*",
        metavar="NAME",
        default=None,
        help="compare with the published FAST'20 curves (all, or those whose name contains "
        "NAME, e.g. '6-DIMM ntstore') in steady state; --requests is per point",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run_microbench(
    profile_name: str = "optane-gen1",
    *,
    op: str = "load",
    pattern: str = "seq",
    size_bytes: int = 256,
    threads: int = 1,
    dimms: int | None = None,
    region_bytes: int | None = None,
    requests: int = 200_000,
    seed: int = 0,
    overrides: dict | None = None,
) -> dict:
    """Run the idle-latency and the bandwidth simulations and return the report dict."""
    prof = load_profile(profile_name, overrides)
    idle = simulate(
        prof,
        op,
        pattern,
        64 if op != "clwb" else 64,
        1,
        dimms=dimms,
        region_bytes=region_bytes,
        requests=min(20_000, requests),
        seed=seed,
        idle=True,
    )
    run = simulate(
        prof,
        op,
        pattern,
        size_bytes,
        threads,
        dimms=dimms,
        region_bytes=region_bytes,
        requests=requests,
        seed=seed,
    )
    warm = idle.latency_ns[len(idle.latency_ns) // 10 :]
    return {
        "profile": profile_name,
        "op": op,
        "pattern": pattern,
        "size_bytes": size_bytes,
        "threads": threads,
        "dimms": prof["dimm.count"] if dimms is None else dimms,
        "latency_ns": round(float(warm.mean()), 2),
        "bandwidth_gbps": round(run.bandwidth_gbps, 4),
        "write_amplification": round(run.write_amplification, 4),
        "read_amplification": round(run.read_amplification, 4),
        "p99_ns": round(run.percentile_ns(99), 2),
        "p99_99_ns": round(run.percentile_ns(99.99), 2),
        "p99_999_ns": round(run.percentile_ns(99.999), 2),
        "mean_loaded_latency_ns": round(float(run.latency_ns.mean()), 2),
        "requests": run.requests,
        "migrations": run.stats["migrations"],
        "simulated_ns": round(run.elapsed_ns, 1),
    }


def main(args: argparse.Namespace) -> int:
    """Run the microbenchmark and print the report."""
    if args.profile not in profile_names():
        raise InputError(f"unknown profile; valid: {', '.join(profile_names())}", args.profile)
    overrides = {}
    for item in args.set:
        if "=" not in item:
            raise InputError("expected KEY=VALUE", item)
        k, v = item.split("=", 1)
        overrides[k.strip()] = v.strip()
    if args.requests is None:
        from sim.timing.published import STEADY_REQUESTS

        args.requests = STEADY_REQUESTS if args.published is not None else 200_000
    if args.requests < 1:
        raise InputError("must be positive", "--requests")
    from sim.limits import check_memory

    # The media model keeps a latency and a completion time per request (two int64).
    check_memory(16 * args.requests, f"{args.requests:,} requests (16 bytes each)", "--requests")
    if args.published is not None:
        return _published(args, overrides)
    rep = run_microbench(
        args.profile,
        op=args.op,
        pattern=args.pattern,
        size_bytes=args.size,
        threads=args.threads,
        dimms=args.dimms,
        region_bytes=args.region,
        requests=args.requests,
        seed=args.seed,
        overrides=overrides,
    )
    if args.json:
        print(json.dumps(rep))
        return 0
    print(
        f"profile {rep['profile']}: {rep['op']} {rep['pattern']} {rep['size_bytes']} B, "
        f"{rep['threads']} thread(s), {rep['dimms']} DIMM(s)"
    )
    print(f"  idle latency        {rep['latency_ns']:10.1f} ns")
    print(f"  bandwidth           {rep['bandwidth_gbps']:10.3f} GB/s")
    print(f"  write amplification {rep['write_amplification']:10.3f}")
    print(
        f"  loaded latency      mean {rep['mean_loaded_latency_ns']:.1f} ns, "
        f"p99 {rep['p99_ns']:.1f}, "
        f"p99.99 {rep['p99_99_ns']:.1f}, p99.999 {rep['p99_999_ns']:.1f} ns"
    )
    if rep["migrations"]:
        print(f"  wear-levelling migrations {rep['migrations']}")
    return 0


def _published(args: argparse.Namespace, overrides: dict) -> int:
    from sim.timing.published import CURVES, compare

    names = tuple(args.published)
    for n in names:
        if not any(n.lower() in c.name.lower() for c in CURVES):
            valid = ", ".join(c.name for c in CURVES)
            raise InputError(f"no published curve matches; valid: {valid}", n)
    rows = compare(load_profile(args.profile, overrides), names, requests=args.requests)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"profile {args.profile} vs FAST'20 (NVSL/OptaneStudy figure data and raw sweep), GB/s")
    last = None
    for r in rows:
        if r["curve"] != last:
            last = r["curve"]
            unit = "threads" if r["vary"] == "threads" else "bytes"
            print(f"{last} (by {unit}):")
        mark = "fitted" if r["fitted"] else "checked only"
        print(
            f"  {r['x']:>6}  published {r['published_gbps']:6.2f}  model {r['model_gbps']:6.2f}"
            f"  {100 * r['error']:+5.0f}%  {mark}"
        )
    return 0
