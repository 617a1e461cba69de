"""A WebSocket client over TLS, independent of turntable's code, for the reverse-proxy
test (tests/deploy.rs): connects to wss://HOST:PORT/turntable (any certificate), reads
the greeting, identifies as USER and prints each message it receives, one per line.

Usage: python3 wss_client.py HOST PORT USER
"""

import base64
import os
import socket
import ssl
import struct
import sys


def frame(text):
    """One masked text frame, as a client sends it."""
    payload = text.encode()
    mask = os.urandom(4)
    head = bytes([0x81])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


def read_message(sock):
    """The next text message's payload (server frames are unmasked, unfragmented here)."""
    while True:
        b0, b1 = read_exact(sock, 2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", read_exact(sock, 2))[0]
        elif n == 127:
            n = struct.unpack("!Q", read_exact(sock, 8))[0]
        payload = read_exact(sock, n)
        if b0 & 0x0F == 0x1:
            return payload.decode()


def main():
    host, port, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    sock = context.wrap_socket(socket.create_connection((host, port), timeout=10))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /turntable HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += read_exact(sock, 1)
    print(head.split(b"\r\n")[0].decode(), flush=True)
    print(read_message(sock), flush=True)
    sock.sendall(frame('{"command":"idme","data":"%s"}' % user))
    print(read_message(sock), flush=True)


if __name__ == "__main__":
    main()
