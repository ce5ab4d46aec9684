"""TCP proxies between each replica and its stores, with latency and packet loss the harness turns on and off.

    python3 proxy.py CONTROL_FILE NAME=LISTEN_PORT:TARGET_HOST:TARGET_PORT ...

Every 100 ms the proxy reads CONTROL_FILE, a JSON object `{NAME: {"delay_ms": .., "jitter_ms": .., "loss": ..}}`
(a missing name: no fault). Each chunk read from one side is delivered to the other no earlier than `delay_ms`
plus up to `jitter_ms` later, in order. TCP does not lose data, so a lost packet shows as its retransmission:
with probability `loss` a chunk waits a retransmission timeout (200 ms, doubling up to 1.6 s) on top. Standard
library only.
"""

import asyncio
import json
import os
import random
import sys
import time

CHUNK = 65536
settings: dict = {}


async def watch(control: str) -> None:
    global settings
    mtime = None
    while True:
        try:
            stat = os.stat(control).st_mtime_ns
            if stat != mtime:
                with open(control) as f:
                    settings = json.load(f)
                mtime = stat
        except (OSError, ValueError):
            pass
        await asyncio.sleep(0.1)


def lateness(name: str) -> float:
    s = settings.get(name) or {}
    delay = s.get("delay_ms", 0) + random.uniform(0, s.get("jitter_ms", 0))
    rto = 200
    while random.random() < s.get("loss", 0) and rto <= 1600:
        delay += rto
        rto *= 2
    return delay / 1000


async def pump(name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    queue: asyncio.Queue = asyncio.Queue()

    async def deliver() -> None:
        while True:
            at, data = await queue.get()
            wait = at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    last = 0.0
    try:
        while True:
            data = await reader.read(CHUNK)
            # In order: a chunk never overtakes the one before it.
            last = max(last, time.monotonic() + lateness(name))
            await queue.put((last, data or None))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        pass
    finally:
        sender.cancel()
        try:
            writer.close()
        except Exception:
            pass


async def serve(name: str, port: int, host: str, target: int) -> None:
    async def handle(client_r, client_w):
        try:
            server_r, server_w = await asyncio.open_connection(host, target)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pump(name, client_r, server_w), pump(name, server_r, client_w))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def main() -> None:
    control, specs = sys.argv[1], sys.argv[2:]
    tasks = [asyncio.create_task(watch(control))]
    for spec in specs:
        name, rest = spec.split("=", 1)
        port, host, target = rest.split(":")
        tasks.append(asyncio.create_task(serve(name, int(port), host, int(target))))
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    asyncio.run(main())
