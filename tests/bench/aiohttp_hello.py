"""The peer from the seeds: an aiohttp hello-world (asyncio's loop, or uvloop).

    /usr/bin/python3 tests/bench/aiohttp_hello.py PORT [--uvloop]
"""
import asyncio
import sys

from aiohttp import web


async def hello(request):
    return web.Response(text="Hello, world!")


def main():
    port = int(sys.argv[1])
    if "--uvloop" in sys.argv:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = web.Application()
    app.router.add_get("/", hello)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=lambda *a: print(*a, flush=True))


if __name__ == "__main__":
    main()
