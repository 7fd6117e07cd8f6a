"""Helpers shared by the benchmark scripts: the fake server import path and a plain table printer."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))


def print_table(title: str, header: list[str], rows: list[list[object]]) -> None:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def fake_members(server, names: list[str], max_concurrency: int, provider: str = "vllm"):
    """Members on a fake server, in a fresh registry whose endpoint allows ``max_concurrency`` calls."""
    from ensemble_cli.config import MemberConfig, RunConfig
    from ensemble_cli.providers.registry import ProviderRegistry
    from ensemble_cli.strategies.base import Member

    registry = ProviderRegistry(RunConfig(max_concurrency=max_concurrency, max_retries=0))
    members = [
        Member(f"{name}-{i}", registry.provider_for(MemberConfig(name=f"{name}-{i}", provider=provider, model=name,
                                                                 base_url=server.base_url)))
        for i, name in enumerate(names)
    ]
    return registry, members


def concurrency_table(title: str, latency: float, steps: int, walls: dict[str, float]) -> None:
    """Wall time against the target of 1.2 x steps x latency, and the sequential baseline's ratio."""
    target = 1.2 * steps * latency
    sequential = walls["sequential baseline"]
    rows = [[name, f"{wall:.3f}", f"{sequential / wall:.1f}x", f"<= {target:.3f}",
             verdict(wall <= target) if name != "sequential baseline" else ""]
            for name, wall in walls.items()]
    print_table(title, ["run", "wall s", "speed-up", "target", ""], rows)
