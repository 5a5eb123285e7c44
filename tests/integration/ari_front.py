# tests/integration/ari_front.py — an HTTPS front for pebble that adds ACME Renewal Information
# (RFC 9773), which Debian's pebble 2.4 lacks, so a scenario can check certkeep's ARI client end
# to end. Every request is passed to pebble as it came (same path, body and Host, so pebble's
# URLs and the JWS "url" stay the front's); the directory gains "renewalInfo", answered here:
#   DIR/window    "START END [RETRY_AFTER]": the window suggested for the first certID asked, in
#                 epoch seconds, or "+N" for N seconds after the request; any other certID gets
#                 404 (no window: the policy applies)
#   DIR/asked     "CERTID EPOCH" per renewalInfo request
#   DIR/orders    the payload of every newOrder, one JSON per line
#   DIR/refuse_not_after  while it exists, a newOrder with notAfter is refused as Let's Encrypt
#                 refuses it (400 malformed), without reaching pebble
# Usage: python3 ari_front.py DIR PEBBLE_PORT CERT KEY CA   (writes DIR/port once listening)
import base64, http.client, http.server, json, os, ssl, sys, time

work, pebble_port, cert, key, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
upstream_tls = ssl.create_default_context(cafile=ca)
upstream_tls.check_hostname = False
PASS_HEADERS = ("Content-Type", "Replay-Nonce", "Location", "Link", "Retry-After", "Cache-Control")


def append(name, line):
    with open(os.path.join(work, name), "a") as f:
        f.write(line + "\n")


def iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Front(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def renewal_info(self, cert_id):
        now = int(time.time())
        append("asked", "%s %d" % (cert_id, now))
        with open(os.path.join(work, "asked")) as f:
            first = f.readline().split()[0]
        try:
            with open(os.path.join(work, "window")) as f:
                fields = f.read().split()
        except OSError:
            fields = []
        if cert_id != first or len(fields) < 2:
            return self.reply(404, b'{"type":"urn:ietf:params:acme:error:malformed"}',
                              [("Content-Type", "application/problem+json")])
        at = lambda field: now + int(field[1:]) if field.startswith("+") else int(field)
        body = json.dumps({"suggestedWindow": {"start": iso(at(fields[0])), "end": iso(at(fields[1]))},
                           "explanationURL": "https://ari.example.test/why"}).encode()
        retry = fields[2] if len(fields) > 2 else "21600"
        self.reply(200, body, [("Content-Type", "application/json"), ("Retry-After", retry)])

    def forward(self):
        if self.path.startswith("/renewal-info/"):
            return self.renewal_info(self.path[len("/renewal-info/"):])
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else None
        if self.path == "/order-plz" and body:
            payload = b64url_decode(json.loads(body)["payload"]).decode()
            append("orders", payload)
            if "notAfter" in json.loads(payload) and os.path.exists(os.path.join(work, "refuse_not_after")):
                problem = {"type": "urn:ietf:params:acme:error:malformed",
                           "detail": "NotBefore and NotAfter are not supported", "status": 400}
                return self.reply(400, json.dumps(problem).encode(),
                                  [("Content-Type", "application/problem+json")])
        conn = http.client.HTTPSConnection("127.0.0.1", pebble_port, context=upstream_tls, timeout=30)
        headers = {"Host": self.headers.get("Host", ""), "Content-Type": self.headers.get("Content-Type", "")}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if self.path == "/dir" and resp.status == 200:
            directory = json.loads(data)
            directory["renewalInfo"] = "https://%s/renewal-info" % self.headers.get("Host")
            data = json.dumps(directory).encode()
        self.reply(resp.status, data, [(h, v) for h, v in resp.getheaders() if h in PASS_HEADERS])
        conn.close()

    do_GET = do_POST = do_HEAD = forward

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Front)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(cert, key)
server.socket = tls.wrap_socket(server.socket, server_side=True)
with open(os.path.join(work, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(work, "port.tmp"), os.path.join(work, "port"))
server.serve_forever()
