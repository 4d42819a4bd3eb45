"""A minimal ringkv client in Python, written from docs/protocol.md alone (nats-py and msgpack).

It sends every request through the API queue group (docs/protocol.md §1), so it needs no ring:
put, get (every sibling and the context), put with a context, delete, and status.

    python3 ringkv_client.py --server nats://127.0.0.1:4222 --cluster ringkv scenario

runs the scenario test/integration/python-client.test.ts checks and prints its results as JSON.
"""
import argparse
import asyncio
import itertools
import json
import sys

import msgpack
import nats

PROTOCOL_VERSION = 1


class RingkvError(Exception):
    """An error answer (docs/protocol.md §5): a code, a sentence, and for UNAVAILABLE needed/alive."""

    def __init__(self, code, message, needed=None, alive=None):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.needed, self.alive = code, message, needed, alive


class Client:
    def __init__(self, nc, cluster="ringkv", name="py-client", timeout_s=6.0):
        self.nc, self.cluster, self.name, self.timeout_s = nc, cluster, name, timeout_s
        self._ids = itertools.count(1)

    @classmethod
    async def connect(cls, server, cluster="ringkv"):
        return cls(await nats.connect(server), cluster)

    async def close(self):
        await self.nc.close()

    def envelope(self, kind, body, version=PROTOCOL_VERSION):
        req_id = str(next(self._ids))
        env = {"v": version, "kind": kind, "from": self.name, "to": "", "reqId": req_id, "body": body}
        # use_bin_type: bytes travel as MessagePack bin, str as str (§2).
        return req_id, msgpack.packb(env, use_bin_type=True)

    async def request_raw(self, op, payload):
        msg = await self.nc.request(f"ringkv.{self.cluster}.api.{op}", payload, timeout=self.timeout_s)
        return msgpack.unpackb(msg.data, raw=False)

    async def request(self, kind, body):
        req_id, payload = self.envelope(kind, body)
        answer = await self.request_raw(kind[len("api."):], payload)
        # A reply subject of our own gets one answer; unpack a batch all the same (§8).
        if answer.get("kind") == "batch":
            items = [msgpack.unpackb(i, raw=False) for i in answer["body"]["items"]]
            answer = next(i for i in items if i.get("reqId") == req_id)
        if answer["kind"] == "error":
            b = answer["body"]
            raise RingkvError(b.get("code", "INTERNAL"), b.get("message", ""), b.get("needed"), b.get("alive"))
        if answer["kind"] != kind + ".ok":
            raise RingkvError("INTERNAL", f"unexpected answer kind {answer['kind']!r}")
        return answer["body"]

    async def put(self, key: bytes, value: bytes, context: bytes | None = None, **options) -> bytes:
        body = {"key": key, "value": value, **options}
        if context is not None:
            body["context"] = context
        return (await self.request("api.put", body))["context"]

    async def get(self, key: bytes, **options):
        """(found, values, context): every live sibling, and the context to write back with."""
        body = await self.request("api.get", {"key": key, **options})
        return body["found"], list(body["values"]), body["context"]

    async def delete(self, key: bytes, context: bytes | None = None, **options) -> bytes:
        body = {"key": key, **options}
        if context is not None:
            body["context"] = context
        return (await self.request("api.del", body))["context"]

    async def status(self):
        body = await self.request("api.status", {})
        # Integers of 2^32 and above arrive as float64 (§2).
        body["startedAt"] = int(body["startedAt"]) if "startedAt" in body else None
        return body


async def scenario(server, cluster, key):
    c = await Client.connect(server, cluster)
    out = {}
    try:
        k = key.encode()
        # Two blind writes: the second does not supersede the first, so the key has two siblings.
        await c.put(k, b"apple")
        await c.put(k, b"pear")
        found, values, context = await c.get(k)
        out["siblings"] = sorted(v.decode() for v in values)
        out["found"] = found
        out["contextIsBytes"] = isinstance(context, bytes)
        # The application merges them and writes with the read's context: one value is left.
        await c.put(k, b",".join(sorted(values)), context=context)
        _, values, context = await c.get(k)
        out["merged"] = [v.decode() for v in values]
        await c.delete(k, context=context)
        found, values, _ = await c.get(k)
        out["afterDelete"] = {"found": found, "values": values}
        # A value sent as str instead of bin is refused, and so is a version the node does not speak.
        _, payload = c.envelope("api.put", {"key": k, "value": "a str"})
        refused = await c.request_raw("put", payload)
        out["strValue"] = [refused["kind"], refused["body"]["code"], refused["body"]["message"]]
        _, payload = c.envelope("api.get", {"key": k}, version=2)
        refused = await c.request_raw("get", payload)
        out["version2"] = [refused["kind"], refused["body"]["code"], refused["body"]["message"]]
        try:
            await c.put(b"", b"x")
            out["emptyKey"] = "accepted"
        except RingkvError as e:
            out["emptyKey"] = e.code
        # Leave a value for the TypeScript client to read.
        await c.put(k + b":py", "héllo from python".encode())
        status = await c.status()
        out["members"] = sorted(m["nodeId"] for m in status["members"])
        out["partitionsOwned"] = sum(len(m["partitions"]) for m in status["members"])
        out["partitions"] = status["partitions"]
        out["startedAtIsInt"] = isinstance(status["startedAt"], int)
    finally:
        await c.close()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="nats://127.0.0.1:4222")
    parser.add_argument("--cluster", default="ringkv")
    parser.add_argument("--key", default="py:cart")
    parser.add_argument("command", choices=["scenario"])
    args = parser.parse_args()
    result = asyncio.run(scenario(args.server, args.cluster, args.key))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
