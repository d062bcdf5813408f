#!/usr/bin/env python3
"""Small SMTP client and helpers for tests/mailenv (stdlib only).

Subcommands (all talk to loopback only: $MAILENV_HOST, default 127.0.0.1):

  ports N [HOST]           print N distinct free TCP ports on HOST (default
                           127.0.0.1), one a line, chosen below the kernel's
                           ephemeral range.
  pids DIR                 print the pids of the Postfix/Dovecot processes that
                           belong to the environment in DIR (working directory,
                           root, command line or MAIL_CONFIG inside DIR).
  send PORT FROM TO FILE   plain SMTP (MTA port, no auth).  TO may hold several
                           addresses separated by commas.
  submit MODE PORT USER PASSWORD CAFILE FROM TO FILE
                           MODE is "starttls" (submission) or "tls" (implicit
                           TLS, submissions); AUTH PLAIN as USER; the server
                           certificate is verified against CAFILE for the
                           address MAILENV_HOST (IP subjectAltName).

send/submit read FILE as bytes ("-" for stdin), turn bare LF line ends into
CRLF and print the server's final reply to DATA (e.g. "250 2.0.0 Ok: queued as
4ABC123").  Exit status: 0 accepted; 4 on a 4xx reply (e.g. a milter tempfail),
5 on a 5xx reply, 1 on any other failure (connection, TLS, timeout).  The SMTP
reply is printed on stderr on failure as "smtp-error CODE TEXT".
"""
import os
import random
import re
import smtplib
import socket
import ssl
import sys

TIMEOUT = float(os.environ.get("MAILENV_SMTP_TIMEOUT", "60"))
HOST = os.environ.get("MAILENV_HOST") or "127.0.0.1"


def lab_or_loopback(host):
    """127/8, or 198.18.0.0/15 (a test lab inside a network namespace)."""
    return host.startswith("127.") or host.startswith("198.18.") or host.startswith("198.19.")


if not lab_or_loopback(HOST):
    raise SystemExit("mailenv: refusing non-loopback host %r" % HOST)


def free_ports(n, host):
    lo = 20000
    hi = 32000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_lo = int(f.read().split()[0])
        hi = min(hi, eph_lo - 1)
        lo = min(lo, hi - 2000)
    except (OSError, ValueError, IndexError):
        pass
    rng = random.SystemRandom()
    chosen = []
    tries = 0
    while len(chosen) < n:
        tries += 1
        if tries > 5000:
            raise SystemExit("mailenv: cannot find %d free ports" % n)
        p = rng.randint(lo, hi)
        if p in chosen:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # no SO_REUSEADDR: a port with TIME_WAIT leftovers is skipped too
            s.bind((host, p))
        except OSError:
            continue
        finally:
            s.close()
        chosen.append(p)
    return chosen


EXE_PREFIXES = ("/usr/lib/postfix/", "/usr/sbin/post", "/usr/sbin/sendmail",
                "/usr/sbin/dovecot", "/usr/lib/dovecot/", "/usr/bin/doveadm")


def env_pids(d):
    d = os.path.realpath(d).rstrip("/")
    inside = d + "/"
    me = {os.getpid(), os.getppid()}
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in me:
            continue
        base = "/proc/" + name
        try:
            exe = os.readlink(base + "/exe")
        except OSError:
            continue  # gone, zombie or kernel thread
        if not exe.startswith(EXE_PREFIXES):
            continue
        hit = False
        for link in ("cwd", "root"):
            try:
                if (os.readlink(base + "/" + link) + "/").startswith(inside):
                    hit = True
                    break
            except OSError:
                pass
        if not hit:
            for f in ("cmdline", "environ"):
                try:
                    with open(base + "/" + f, "rb") as fh:
                        parts = fh.read().split(b"\0")
                except OSError:
                    continue
                if f == "cmdline":
                    hit = any(inside.encode() in p for p in parts)
                else:
                    hit = ("MAIL_CONFIG=%s/postfix" % d).encode() in parts
                if hit:
                    break
        if hit:
            out.append(int(name))
    return out


def read_message(path):
    if path == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(path, "rb") as f:
            data = f.read()
    # bare LF -> CRLF, leave existing CRLF alone
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def transact(conn, sender, rcpts, data):
    code, msg = conn.ehlo()
    if code != 250:
        raise smtplib.SMTPHeloError(code, msg)
    code, msg = conn.mail(sender)
    if code != 250:
        raise smtplib.SMTPSenderRefused(code, msg, sender)
    for r in rcpts:
        code, msg = conn.rcpt(r)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({r: (code, msg)})
    code, msg = conn.data(data)
    if code != 250:
        raise smtplib.SMTPDataError(code, msg)
    return code, msg


def smtp_fail(code, msg):
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    print("smtp-error %s %s" % (code, msg), file=sys.stderr)
    if 400 <= code < 500:
        return 4
    if 500 <= code < 600:
        return 5
    return 1


def run_transaction(make_conn, login, sender, to, path):
    rcpts = [a.strip() for a in to.split(",") if a.strip()]
    data = read_message(path)
    try:
        conn = make_conn()
        try:
            if login:
                login(conn)
            code, msg = transact(conn, sender, rcpts, data)
            print("%d %s" % (code, msg.decode("utf-8", "replace")))
        finally:
            try:
                conn.quit()
            except Exception:
                conn.close()
    except smtplib.SMTPRecipientsRefused as e:
        (code, msg), = e.recipients.values()
        return smtp_fail(code, msg)
    except smtplib.SMTPResponseException as e:
        return smtp_fail(e.smtp_code, e.smtp_error)
    except (OSError, smtplib.SMTPException) as e:
        print("smtp-error 0 %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[1]
    if cmd == "ports" and len(argv) in (3, 4):
        host = argv[3] if len(argv) == 4 else "127.0.0.1"
        if not lab_or_loopback(host):
            raise SystemExit("mailenv: refusing non-loopback host %r" % host)
        for p in free_ports(int(argv[2]), host):
            print(p)
        return 0
    if cmd == "pids" and len(argv) == 3:
        for p in env_pids(argv[2]):
            print(p)
        return 0
    if cmd == "send" and len(argv) == 6:
        port, sender, to, path = argv[2:]

        def make():
            c = smtplib.SMTP(HOST, int(port), local_hostname="client.test",
                             timeout=TIMEOUT)
            return c
        return run_transaction(make, None, sender, to, path)
    if cmd == "submit" and len(argv) == 10:
        mode, port, user, password, cafile, sender, to, path = argv[2:]
        ctx = ssl.create_default_context(cafile=cafile)
        if mode == "tls":
            def make():
                return smtplib.SMTP_SSL(HOST, int(port), context=ctx,
                                        local_hostname="client.test",
                                        timeout=TIMEOUT)
        elif mode == "starttls":
            def make():
                c = smtplib.SMTP(HOST, int(port), local_hostname="client.test",
                                 timeout=TIMEOUT)
                c.ehlo()
                c.starttls(context=ctx)
                return c
        else:
            print("mode must be starttls or tls", file=sys.stderr)
            return 2

        def login(c):
            c.ehlo()
            c.user, c.password = user, password
            c.auth("PLAIN", c.auth_plain, initial_response_ok=True)
        return run_transaction(make, login, sender, to, path)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
