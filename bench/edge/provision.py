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
import time

CSR_WAIT_SECONDS = 1800


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
    if done == total or done % 5000 == 0:
        print(f"provision: {label} {done}/{total} ({time.time() - started:.0f} s)", flush=True)


def main():
    addr, names_file, count, work, gencerts, ca_cert, ca_key = sys.argv[1:8]
    api = Api(addr, os.environ["CERTKEEP_TOKEN"])
    with open(names_file) as f:
        names = [line.strip() for line in f if line.strip()][: int(count)]
    with open(ca_cert) as f:
        chain = f.read()
    started = time.time()
    orders = {}
    for i, name in enumerate(names, 1):
        api.must("POST", "/v1/enrollments", {"name": name, "cn": name, "key_type": "ec-p256"})
        orders[name] = api.must("POST", f"/v1/enrollments/{name}/orders", {})["id"]
        progress("orders started", i, len(names), started)
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
    for i, name in enumerate(names, 1):
        oid = orders[name]
        with open(os.path.join(csr_dir, name + ".crt")) as f:
            order = api.must("POST", f"/v1/orders/{oid}/certificate",
                             {"certificate": f.read(), "chain": chain})
        if order.get("state", order.get("order", {}).get("state")) == "awaiting_ack":
            api.must("POST", f"/v1/orders/{oid}/acknowledge", {})
        api.must("POST", f"/v1/orders/{oid}/stage", {})
        api.must("POST", f"/v1/orders/{oid}/deploy", {})
        progress("deployed", i, len(names), started)


if __name__ == "__main__":
    main()
