"""Which HTTP client and event loop kuar-loadgen uses: requests/s on one core against nginx.

Run: ``.venv/bin/python -m bench.loadgen.alternatives [--seconds 5] [--rounds 2]``

- aiohttp ``ClientSession`` (keep-alive pool of 64), closed loop: 64 tasks each sending the next
  request as soon as the last one is answered, on the asyncio loop and on uvloop. Closed loop
  is aiohttp's best case: an open-loop scheduler on top of it can only be slower.
- kuar-loadgen's own client (raw ``asyncio.Protocol`` + ``httptools``), open loop (rate raised
  1.5x per step until it falls 3 % short), on the asyncio loop and on uvloop.

Each variant runs in its own process pinned to core 1, nginx on core 0; best of the rounds.
The figures feed docs/decisions (the load generator's client).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time

from bench.loadgen.nginx import nginx
from bench.loadgen.tools import CONNECTIONS, kuar_max, pinned


async def _aiohttp_closed_loop(url: str, seconds: float) -> float:
    import aiohttp

    done = 0
    end = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def user() -> None:
            nonlocal done
            while time.monotonic() < end:
                async with session.get(url) as resp:
                    await resp.read()
                done += 1

        start = time.monotonic()
        await asyncio.gather(*(user() for _ in range(CONNECTIONS)))
        return done / (time.monotonic() - start)


def _child(url: str, seconds: float, loop: str) -> None:
    if loop == "uvloop":
        import uvloop

        rps = uvloop.run(_aiohttp_closed_loop(url, seconds))
    else:
        rps = asyncio.run(_aiohttp_closed_loop(url, seconds))
    print(json.dumps({"rps": rps}))


def aiohttp_max(url: str, seconds: int, core: int, loop: str) -> float:
    cmd = [sys.executable, "-m", "bench.loadgen.alternatives", "--child", url, str(seconds), loop]
    out = subprocess.run(pinned(core, cmd), capture_output=True, text=True, check=True,
                         timeout=seconds + 60)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["rps"])


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(sys.argv[2], float(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    best: dict[str, float] = {}
    with nginx(0) as srv:
        for _ in range(args.rounds):
            for loop in ("asyncio", "uvloop"):
                name = f"aiohttp, closed loop, {loop}"
                best[name] = max(best.get(name, 0.0), aiohttp_max(srv.url, args.seconds, 1, loop))
                name = f"raw protocol + httptools, open loop, {loop}"
                m = kuar_max(srv.url, seconds=args.seconds, core=1, loop=loop)
                best[name] = max(best.get(name, 0.0), m.rps or 0.0)
    print(f"{'client':<48}{'requests/s':>12}")
    for name, rps in best.items():
        print(f"{name:<48}{rps:>12,.0f}")


if __name__ == "__main__":
    main()
