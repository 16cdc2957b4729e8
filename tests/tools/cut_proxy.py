#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that cuts the first blob download short, for the
registry tests of resumed transfers (python3 stdlib).

usage: cut_proxy.py PORTFILE TARGET_PORT CUT_BYTES LOG

Relays every connection to 127.0.0.1:TARGET_PORT.  The first blob response
(`GET /v2/.../blobs/sha256:...` without a Range header) to reach CUT_BYTES
bytes is cut there: both sockets close.  Each request line is
logged to LOG with its Range header, if any.  A connection may carry
several requests, one after the other (keep-alive, no pipelining).
"""
import os
import socket
import sys
import threading

PORTFILE, TARGET, CUT, LOG = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lock = threading.Lock()
state = {"cut": False}


def log(line):
    with lock, open(LOG, "a") as f:
        f.write(line + "\n")


def request(head, st):
    """A request head seen on the connection: logged, and whether its
    response may be cut (counted from the response's first byte)."""
    lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    rng = [h.split(":", 1)[1].strip() for h in lines[1:] if h.lower().startswith("range:")]
    log("%s%s" % (lines[0], (" Range: " + rng[0]) if rng else ""))
    blob = lines[0].startswith("GET ") and "/blobs/sha256:" in lines[0] and not rng
    st["cut"] = CUT if blob else None  # a candidate: the first one to reach CUT bytes is cut
    st["sent"] = 0


def relay(client):
    server = socket.create_connection(("127.0.0.1", TARGET))
    head = client.recv(65536)
    methods = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ")
    while head.startswith(methods) and b"\r\n\r\n" not in head:
        data = client.recv(65536)
        if not data:
            break
        head += data
    st = {"cut": None, "sent": 0}
    if head.startswith(methods):
        request(head, st)
    else:  # not HTTP (a TLS hello): relay as is
        log("non-HTTP connection")
    server.sendall(head)

    def upstream():
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                if data.startswith(methods):  # the next request on this connection
                    request(data, st)
                server.sendall(data)
        except OSError:
            pass

    threading.Thread(target=upstream, daemon=True).start()
    try:
        while True:
            data = server.recv(65536)
            if not data:
                break
            cut = st["cut"]
            if cut is not None and st["sent"] + len(data) >= cut:
                with lock:
                    first = not state["cut"]
                    state["cut"] = True
                if first:
                    client.sendall(data[: cut - st["sent"]])
                    log("cut after %d bytes" % cut)
                    break
                st["cut"] = None
            client.sendall(data)
            st["sent"] += len(data)
    except OSError:
        pass
    for s in (client, server):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(16)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(listener.getsockname()[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=relay, args=(conn,), daemon=True).start()
