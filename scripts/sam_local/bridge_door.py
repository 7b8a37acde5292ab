"""Lets `sam local` containers reach the stand-ins, which listen on 127.0.0.1 only.

SAM 1.170 accepts `--docker-network host` but does not put the container on the host's network (it only skips
connecting it to another one), so a function's 127.0.0.1 is its own container. The containers sit on the bridge
that this machine's dockerd created (docker0); this relays TCP from that bridge's gateway address, on the given
ports, to the same ports on 127.0.0.1. Nothing listens on any other interface, and nothing leaves the machine.

    python scripts/sam_local/bridge_door.py --gateway         print the bridge's gateway address
    python scripts/sam_local/bridge_door.py PORT [PORT ...]   relay gateway:PORT -> 127.0.0.1:PORT until killed
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import subprocess
import sys


def bridge_gateway(network: str = "bridge") -> str:
    """The host's address on dockerd's default bridge (docker0), from `docker network inspect`."""
    described = json.loads(
        subprocess.run(["docker", "network", "inspect", network], check=True, capture_output=True, text=True).stdout
    )[0]
    for config in described["IPAM"]["Config"] or []:
        if config.get("Gateway"):
            return config["Gateway"]
        if config.get("Subnet") and ":" not in config["Subnet"]:
            # dockerd gives the bridge the subnet's first address when the gateway is not spelled out.
            return str(next(ipaddress.ip_network(config["Subnet"]).hosts()))
    raise SystemExit(f"bridge_door: docker network {network!r} names no IPv4 gateway")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def _relay_to(port: int, client_reader, client_writer) -> None:
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))


async def serve(gateway: str, ports: list[int]) -> None:
    servers = []
    for port in ports:
        try:
            servers.append(
                await asyncio.start_server(lambda r, w, port=port: _relay_to(port, r, w), host=gateway, port=port)
            )
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            # Another door (a second set of stand-ins sharing the OpenSearch node) relays this port already.
            print(f"bridge_door: {gateway}:{port} is relayed already; leaving it to that door", file=sys.stderr)
    print(f"bridge_door: {gateway}:{{{','.join(map(str, ports))}}} -> 127.0.0.1", file=sys.stderr, flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main(argv: list[str]) -> int:
    if argv[1:] == ["--gateway"]:
        print(bridge_gateway())
        return 0
    if len(argv) < 2 or not all(arg.isdigit() for arg in argv[1:]):
        print(__doc__, file=sys.stderr)
        return 2
    asyncio.run(serve(bridge_gateway(), [int(arg) for arg in argv[1:]]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
