#!/usr/bin/env python3
"""udpprobe.py - what does a NAT do to my UDP flows?  (tests/natlab)

Server (run in the "public" namespace):
    udpprobe.py serve ADDR:PORT [ADDR:PORT...]
  Binds every endpoint, prints "listening" once all are bound, runs until
  killed.  Requests (one datagram each, ASCII):
    ASK TOKEN            -> "SEEN IP:PORT TOKEN" from the same socket,
                            IP:PORT being the source the server saw
    VIA ADDR:PORT TOKEN  -> "FROM ADDR:PORT TOKEN" sent to the seen source
                            from the server's socket bound to ADDR:PORT
                            (must be one of its own endpoints): does a
                            packet from another address / port get in?
  Any other datagram is ignored; every request is logged on stdout as
  "req SRC LINE".

TCP server (is TCP translated too?):
    udpprobe.py tcp-serve ADDR:PORT
  Prints "listening"; to every connection writes "SEEN IP:PORT\n" (the
  peer it saw) and closes it.

Client (run on a LAN host), steps run in order on ONE socket:
    udpprobe.py client [--bind ADDR:PORT] [--timeout MS] STEP...
    ask=HOST:PORT         prints "seen HOST:PORT IP:PORT" or "seen HOST:PORT none"
    via=HOST:PORT,FROM    asks HOST:PORT to answer from FROM (ADDR:PORT);
                          prints "from FROM got" or "from FROM none"
    send=HOST:PORT        one datagram "PING", no answer expected
    listen=MS             prints "recv SRC TEXT" for what arrives in MS
    sleep=SEC             waits (fractions allowed)
    tcp=HOST:PORT         connects (own TCP socket) to a tcp-serve server;
                          prints "tcpseen HOST:PORT IP:PORT" or "... none"
  First prints "bound IP:PORT".  Exit 0 unless the arguments are bad (2).
  Requests are retransmitted (4 tries within the timeout, default 1000 ms)
  so a lost packet does not read as filtering.

Churn (a busy LAN host in the background):
    udpprobe.py churn RATE HOST:PORT
  RATE times a second opens a new socket (a new ephemeral port: a new
  NAT mapping), sends one "PING" to HOST:PORT and closes it; prints
  "churning" once started, runs until killed.

Only numeric addresses; the lab never sends outside its namespaces.
"""
import select
import socket
import sys
import time


def endpoint(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def fmt(ep):
    return "%s:%d" % ep


def serve(args):
    socks = {}
    for spec in args:
        ep = endpoint(spec)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(ep)
        socks[fmt(ep)] = s
    print("listening", flush=True)
    while True:
        ready, _, _ = select.select(list(socks.values()), [], [])
        for s in ready:
            try:
                data, src = s.recvfrom(2048)
            except OSError:
                continue
            line = data.decode("ascii", "replace").strip()
            print("req", fmt(src), line, flush=True)
            words = line.split()
            try:
                if len(words) == 2 and words[0] == "ASK":
                    s.sendto(("SEEN %s %s" % (fmt(src), words[1])).encode(), src)
                elif len(words) == 3 and words[0] == "VIA" and words[1] in socks:
                    socks[words[1]].sendto(
                        ("FROM %s %s" % (words[1], words[2])).encode(), src)
            except OSError:
                pass


def tcp_serve(spec):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(endpoint(spec))
    s.listen(16)
    print("listening", flush=True)
    while True:
        conn, peer = s.accept()
        try:
            conn.sendall(("SEEN %s\n" % fmt(peer)).encode())
        except OSError:
            pass
        conn.close()


class Client:
    def __init__(self, bind, timeout_ms):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(bind)
        self.timeout = timeout_ms / 1000.0
        self.serial = 0

    def token(self):
        self.serial += 1
        return "t%d.%d" % (int(time.time() * 1000) % 100000000, self.serial)

    def exchange(self, request, dest, want):
        """Sends request to dest until an answer starting with want
        (a tuple of words) arrives; returns its words or None."""
        deadline = time.monotonic() + self.timeout
        tries = 4
        gap = self.timeout / tries
        next_send = 0.0
        while True:
            now = time.monotonic()
            if now >= deadline:
                return None
            if now >= next_send and tries > 0:
                try:
                    self.sock.sendto(request.encode(), dest)
                except OSError:
                    pass
                tries -= 1
                next_send = now + gap
            wait = max(0.0, min(deadline, next_send if tries else deadline) - now)
            ready, _, _ = select.select([self.sock], [], [], wait)
            if not ready:
                continue
            try:
                data, _ = self.sock.recvfrom(2048)
            except OSError:
                continue
            words = data.decode("ascii", "replace").split()
            if tuple(words[:len(want)]) == want and words[-1] == request.split()[-1]:
                return words

    def ask(self, arg):
        dest = endpoint(arg)
        words = self.exchange("ASK " + self.token(), dest, ("SEEN",))
        print("seen", arg, words[1] if words else "none", flush=True)

    def via(self, arg):
        target, _, source = arg.partition(",")
        words = self.exchange("VIA %s %s" % (source, self.token()),
                              endpoint(target), ("FROM", source))
        print("from", source, "got" if words else "none", flush=True)

    def tcp(self, arg):
        seen = "none"
        try:
            with socket.create_connection(endpoint(arg), timeout=self.timeout) as t:
                words = t.makefile().readline().split()
                if len(words) == 2 and words[0] == "SEEN":
                    seen = words[1]
        except OSError:
            pass
        print("tcpseen", arg, seen, flush=True)

    def send(self, arg):
        self.sock.sendto(b"PING", endpoint(arg))

    def listen(self, arg):
        deadline = time.monotonic() + int(arg) / 1000.0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self.sock], [], [], left)
            if ready:
                data, src = self.sock.recvfrom(2048)
                print("recv", fmt(src), data.decode("ascii", "replace").strip(), flush=True)


def client(args):
    bind = ("0.0.0.0", 0)
    timeout = 1000
    while args and args[0].startswith("--"):
        if args[0] == "--bind" and len(args) > 1:
            bind = endpoint(args[1])
        elif args[0] == "--timeout" and len(args) > 1:
            timeout = int(args[1])
        else:
            return usage()
        args = args[2:]
    c = Client(bind, timeout)
    print("bound", fmt(c.sock.getsockname()), flush=True)
    for step in args:
        name, _, arg = step.partition("=")
        if name == "ask":
            c.ask(arg)
        elif name == "via":
            c.via(arg)
        elif name == "send":
            c.send(arg)
        elif name == "tcp":
            c.tcp(arg)
        elif name == "listen":
            c.listen(arg)
        elif name == "sleep":
            time.sleep(float(arg))
        else:
            return usage()
    return 0


def churn(rate, dest):
    gap = 1.0 / rate
    print("churning", flush=True)
    next_at = time.monotonic()
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.sendto(b"PING", dest)
        except OSError:
            pass
        s.close()
        next_at += gap
        time.sleep(max(0.0, next_at - time.monotonic()))


def usage():
    sys.stderr.write(__doc__)
    return 2


def main(argv):
    if len(argv) < 2:
        return usage()
    try:
        if argv[1] == "serve" and len(argv) > 2:
            serve(argv[2:])
            return 0
        if argv[1] == "churn" and len(argv) == 4 and float(argv[2]) > 0:
            churn(float(argv[2]), endpoint(argv[3]))
            return 0
        if argv[1] == "tcp-serve" and len(argv) == 3:
            tcp_serve(argv[2])
            return 0
        if argv[1] == "client":
            return client(argv[2:])
    except ValueError as e:
        sys.stderr.write("udpprobe: %s\n" % e)
        return 2
    except KeyboardInterrupt:
        return 0
    return usage()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
