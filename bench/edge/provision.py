#!/usr/bin/env python3
"""Gives a running certkeep daemon one production certificate per name, through its API only.

For each name: an enrollment (ec-p256), an order whose key and CSR certkeep makes, the CSR signed
by the benchmark CA (gencerts sign, in one batch), the certificate imported with the CA as chain,
then stage and deploy. Phases run over all names in turn on one keep-alive connection, so the
daemon's worker makes keys while the API answers. Every wait is bounded.

usage: provision.py ADDR NAMES_FILE COUNT WORK_DIR GENCERTS CA_CERT CA_KEY   (token: CERTKEEP_TOKEN)
"""
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

CSR_WAIT_SECONDS = 1800
CONNECTIONS = 4  # the daemon answers several requests at once; one connection waits on each


class Api:
    def __init__(self, addr, token):
        self.host, port = addr.rsplit(":", 1)
        self.port = int(port)
        self.headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
        self.conn = None

    def call(self, method, path, body=None):
        for attempt in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                data = None if body is None else json.dumps(body)
                self.conn.request(method, path, body=data, headers=self.headers)
                resp = self.conn.getresponse()
                text = resp.read().decode()
                return resp.status, text
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt == 2:
                    raise
        raise RuntimeError("unreachable")

    def must(self, method, path, body=None, ok=(200, 201, 202)):
        status, text = self.call(method, path, body)
        if status not in ok:
            sys.exit(f"provision: {method} {path} -> {status}: {text[:300]}")
        return json.loads(text) if text.startswith("{") else text


def progress(label, done, total, started):
    if done == total or done % 2000 == 0:
        print(f"provision: {label} {done}/{total} ({time.time() - started:.0f} s)", flush=True)


def in_parallel(addr, token, names, fn, label, started):
    """Runs fn(api, name) for every name on CONNECTIONS keep-alive connections."""
    local = threading.local()
    done = [0]
    lock = threading.Lock()

    def one(name):
        if not hasattr(local, "api"):
            local.api = Api(addr, token)
        result = fn(local.api, name)
        with lock:
            done[0] += 1
            progress(label, done[0], len(names), started)
        return result

    with ThreadPoolExecutor(CONNECTIONS) as pool:
        return dict(zip(names, pool.map(one, names)))


def main():
    addr, names_file, count, work, gencerts, ca_cert, ca_key = sys.argv[1:8]
    token = os.environ["CERTKEEP_TOKEN"]
    api = Api(addr, token)
    with open(names_file) as f:
        names = [line.strip() for line in f if line.strip()][: int(count)]
    with open(ca_cert) as f:
        chain = f.read()
    started = time.time()

    def start(api_, name):
        api_.must("POST", "/v1/enrollments", {"name": name, "cn": name, "key_type": "ec-p256"})
        return api_.must("POST", f"/v1/enrollments/{name}/orders", {})["id"]

    orders = in_parallel(addr, token, names, start, "orders started", started)
    csr_dir = os.path.join(work, "csr")
    os.makedirs(csr_dir, exist_ok=True)
    pending = list(names)
    deadline = time.time() + CSR_WAIT_SECONDS
    while pending and time.time() < deadline:
        waiting = []
        for name in pending:
            status, text = api.call("GET", f"/v1/orders/{orders[name]}/csr")
            if status == 200:
                with open(os.path.join(csr_dir, name + ".csr"), "w") as f:
                    f.write(text)
            elif status == 409:
                waiting.append(name)
            else:
                sys.exit(f"provision: CSR of {name}: {status}: {text[:300]}")
        pending = waiting
        progress("CSRs ready", len(names) - len(pending), len(names), started)
        if pending:
            time.sleep(1)
    if pending:
        sys.exit(f"provision: {len(pending)} CSRs still not ready after {CSR_WAIT_SECONDS} s")
    subprocess.run([gencerts, "sign", ca_cert, ca_key, csr_dir], check=True)

    def deploy(api_, name):
        oid = orders[name]
        with open(os.path.join(csr_dir, name + ".crt")) as f:
            order = api_.must("POST", f"/v1/orders/{oid}/certificate",
                              {"certificate": f.read(), "chain": chain})
        if order.get("state", order.get("order", {}).get("state")) == "awaiting_ack":
            api_.must("POST", f"/v1/orders/{oid}/acknowledge", {})
        api_.must("POST", f"/v1/orders/{oid}/stage", {})
        api_.must("POST", f"/v1/orders/{oid}/deploy", {})

    in_parallel(addr, token, names, deploy, "deployed", started)


if __name__ == "__main__":
    main()
