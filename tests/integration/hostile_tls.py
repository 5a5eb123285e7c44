#!/usr/bin/env python3
"""Hostile TLS clients for tests/integration/14_edge_hostile.sh. Loopback only, every wait bounded.

  hostile_tls.py random PORT           2 KiB of random bytes instead of a ClientHello
  hostile_tls.py truncated PORT NAME   the first half of a ClientHello, then end of stream
  hostile_tls.py malformed PORT NAME   a ClientHello whose extensions length overruns the message
  hostile_tls.py biglength PORT        a handshake record header announcing 65535 bytes
  hostile_tls.py hello PORT [NAME]     a whole TLS 1.2 ClientHello, SNI NAME (none if omitted;
                                       "@hex:..." for raw bytes, "@len:N" for N bytes of "a.")
  hostile_tls.py slow PORT NAME LIMIT  half a ClientHello, then silence: seconds until the server
                                       closes (or "open" after LIMIT seconds)
  hostile_tls.py slowhead PORT NAME CA LIMIT  a whole handshake (CA: the root to verify with),
                                       then a request head at one byte a second: seconds until
                                       the server closes (or "open" after LIMIT seconds)
  hostile_tls.py idle PORT N HOLD      N idle TCP connections; reports when they are connected,
                                       then holds them up to HOLD seconds and reports how many
                                       the server closed, the last one how long after the first
                                       connect

Every command prints one line per result on stdout: "closed ...", "alert N", "server_hello",
"timeout", "connected N in S s", "closed_by_server N of M, last after S s".
"""
import os
import select
import socket
import ssl
import struct
import sys
import time

HOST = "127.0.0.1"
IO_TIMEOUT = 5.0


def sni_bytes(spec):
    if spec.startswith("@hex:"):
        return bytes.fromhex(spec[5:])
    if spec.startswith("@len:"):
        n = int(spec[5:])
        return (b"a." * n)[: n - 1] + b"a"
    return spec.encode()


def extension(ext_type, body):
    return struct.pack("!HH", ext_type, len(body)) + body


def client_hello(name, overrun_extensions=False):
    """A TLS 1.2 ClientHello (ECDHE + AEAD suites), with a server_name of `name` unless None."""
    exts = b""
    if name is not None:
        host = sni_bytes(name)
        entry = b"\x00" + struct.pack("!H", len(host)) + host
        exts += extension(0, struct.pack("!H", len(entry)) + entry)
    exts += extension(10, struct.pack("!HHH", 4, 0x001D, 0x0017))  # x25519, P-256
    exts += extension(11, b"\x01\x00")  # uncompressed points
    sigalgs = struct.pack("!HHHH", 6, 0x0403, 0x0804, 0x0401)
    exts += extension(13, sigalgs)
    exts += extension(0xFF01, b"\x00")  # renegotiation_info, empty
    suites = struct.pack("!HHHH", 0xC02B, 0xC02F, 0xC02C, 0xC030)
    ext_len = len(exts) + (200 if overrun_extensions else 0)
    body = (b"\x03\x03" + os.urandom(32) + b"\x00" + struct.pack("!H", len(suites)) + suites +
            b"\x01\x00" + struct.pack("!H", ext_len) + exts)
    handshake = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def connect(port):
    s = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
    s.settimeout(IO_TIMEOUT)
    return s


def read_answer(s):
    """What the server sent back before closing: the first record's meaning, or 'closed'."""
    data = b""
    try:
        while len(data) < 7:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return "timeout (no answer, connection still open after %.0f s)" % IO_TIMEOUT
    except ConnectionResetError:
        return "closed (reset)" if not data else describe(data)
    return describe(data) if data else "closed (no bytes)"


def describe(data):
    if data[0] == 21 and len(data) >= 7:
        return "alert %d" % data[6]
    if data[0] == 22 and len(data) >= 6 and data[5] == 2:
        return "server_hello"
    return "closed (other bytes: %s)" % data[:8].hex()


def cmd_random(port):
    s = connect(port)
    s.sendall(os.urandom(2048))
    print(read_answer(s))


def cmd_truncated(port, name):
    s = connect(port)
    hello = client_hello(name)
    s.sendall(hello[: len(hello) // 2])
    s.shutdown(socket.SHUT_WR)
    print(read_answer(s))


def cmd_malformed(port, name):
    s = connect(port)
    s.sendall(client_hello(name, overrun_extensions=True))
    print(read_answer(s))


def cmd_biglength(port):
    s = connect(port)
    s.sendall(b"\x16\x03\x01\xff\xff\x01\x00\xff\xfb")
    print(read_answer(s))


def cmd_hello(port, name):
    s = connect(port)
    s.sendall(client_hello(name))
    print(read_answer(s))


def cmd_slow(port, name, limit):
    s = connect(port)
    hello = client_hello(name)
    s.sendall(hello[: len(hello) // 2])
    start = time.monotonic()
    s.settimeout(limit)
    try:
        while s.recv(4096):
            pass
        print("closed after %.1f s" % (time.monotonic() - start))
    except socket.timeout:
        print("open after %.0f s" % limit)
    except ConnectionResetError:
        print("closed after %.1f s" % (time.monotonic() - start))


def cmd_slowhead(port, name, cafile, limit):
    ctx = ssl.create_default_context(cafile=cafile)
    s = ctx.wrap_socket(connect(port), server_hostname=name)
    start = time.monotonic()
    try:
        while time.monotonic() - start < limit:
            s.sendall(b"X" if time.monotonic() - start > 0.5 else b"GET / HTTP/1.1\r\nX-Slow: ")
            s.settimeout(1.0)
            try:
                if not s.recv(4096):
                    break
            except socket.timeout:
                pass
        else:
            print("open after %.0f s" % limit)
            return
    except (OSError, ssl.SSLError):
        pass
    print("closed after %.1f s" % (time.monotonic() - start))


def cmd_idle(port, count, hold):
    """count non-blocking connects (done within 60 s), then watch them for hold seconds."""
    ep = select.epoll()
    socks = {}
    start = time.monotonic()
    pending = 0
    for i in range(count):
        # Paced: a burst beyond the listen backlog makes Linux answer with SYN cookies and then
        # drop the client's ACK, leaving the client a connection the server never saw.
        if i % 200 == 199:
            time.sleep(0.04)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        if s.connect_ex((HOST, port)) not in (0, 115):  # EINPROGRESS
            s.close()
            continue
        socks[s.fileno()] = s
        ep.register(s.fileno(), select.EPOLLOUT)
        pending += 1
    connected, failed = 0, 0
    deadline = start + 60
    while pending > 0 and time.monotonic() < deadline:
        for fd, ev in ep.poll(1.0):
            err = socks[fd].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            pending -= 1
            if err == 0 and not ev & (select.EPOLLERR | select.EPOLLHUP):
                connected += 1
                ep.modify(fd, select.EPOLLIN | select.EPOLLRDHUP)
            else:
                failed += 1
                ep.unregister(fd)
                socks.pop(fd).close()
    print("connected %d in %.1f s (%d failed, %d pending)" %
          (connected, time.monotonic() - start, failed, pending), flush=True)
    closed, last = 0, 0.0
    hold_start = time.monotonic()
    while closed < connected and time.monotonic() - hold_start < hold:
        for fd, _ in ep.poll(0.5):
            ep.unregister(fd)
            socks.pop(fd).close()
            closed += 1
            last = time.monotonic() - start
    print("closed_by_server %d of %d, last after %.1f s" % (closed, connected, last), flush=True)
    for s in socks.values():
        s.close()


def main():
    cmd, port = sys.argv[1], int(sys.argv[2])
    args = sys.argv[3:]
    if cmd == "random":
        cmd_random(port)
    elif cmd == "truncated":
        cmd_truncated(port, args[0])
    elif cmd == "malformed":
        cmd_malformed(port, args[0])
    elif cmd == "biglength":
        cmd_biglength(port)
    elif cmd == "hello":
        cmd_hello(port, args[0] if args else None)
    elif cmd == "slow":
        cmd_slow(port, args[0], float(args[1]))
    elif cmd == "slowhead":
        cmd_slowhead(port, args[0], args[1], float(args[2]))
    elif cmd == "idle":
        cmd_idle(port, int(args[0]), float(args[1]))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
