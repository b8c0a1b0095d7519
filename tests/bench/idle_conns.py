#!/usr/bin/python3
"""Opens N keep-alive connections to a server, makes one GET / on each, and
holds them idle: compare.sh reads the server's memory meanwhile.

    idle_conns.py PORT N HOLD_SECONDS

Prints "ready OK_COUNT" once every connection has its response (or failed),
then holds them for HOLD_SECONDS (or until stdin closes) and exits.
"""
import asyncio
import sys


async def one(port, conns, sem):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
            writer.write(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await asyncio.wait_for(reader.readexactly(length), 10)
            ok = head.startswith(b"HTTP/1.1 200")
            conns.append((reader, writer))
            return ok
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
            return False


async def main():
    port, n, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    conns = []
    sem = asyncio.Semaphore(500)  # a burst the listen backlog can take
    results = await asyncio.gather(*(one(port, conns, sem) for _ in range(n)))
    print(f"ready {sum(results)}", flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    await asyncio.wait([stdin_closed, asyncio.ensure_future(asyncio.sleep(hold))],
                       return_when=asyncio.FIRST_COMPLETED)
    for _, w in conns:
        w.close()
    # Do not wait on the executor thread reading stdin.
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
    import os
    os._exit(0)
