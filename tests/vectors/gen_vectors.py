#!/usr/bin/env python3
"""Independent implementation of the mailpunch v1 block format
(docs/PROTOCOL.md), written from the document with Python's
`cryptography` package, to produce the test vectors that the C unit
test tests/unit/test_vectors.c must reproduce byte for byte.

    python3 tests/vectors/gen_vectors.py > tests/vectors/blocks-v1.txt
    python3 tests/vectors/gen_vectors.py --corpus tests/fuzz/corpus/block
"""
import os
import sys
import hashlib
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)
USER, HOST = 1, 2
REQUEST, REPLY, FAILURE_NOTICE = 1, 2, 3


def xpriv(b):
    return x25519.X25519PrivateKey.from_private_bytes(bytes([b]) * 32)


def epriv(b):
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes([b]) * 32)


def pub(k):
    return k.public_key().public_bytes(*RAW)


def str8(s):
    b = s.encode()
    return bytes([len(b)]) + b


def endpoints(cands, nat):
    out = bytes([len(cands)])
    for kind, fam, addr, port in cands:
        out += bytes([kind, fam]) + addr + struct.pack(">H", port)
    mapping, filtering, alloc, delta = nat
    return out + bytes([mapping, filtering, alloc]) + struct.pack(">h", delta)


def seal(msg_type, kind, plain, recipient_pub, eph, sender_host=None, signer=None):
    hdr = b"MP" + bytes([1, msg_type, kind, 0])
    hdr += hashlib.sha256(recipient_pub).digest()[:8] + pub(eph)
    rpub = x25519.X25519PublicKey.from_public_bytes(recipient_pub)
    ikm = eph.exchange(rpub)
    if kind == HOST:
        hdr += pub(sender_host)
        ikm += sender_host.exchange(rpub)
    okm = HKDF(hashes.SHA256(), 44, b"mailpunch-v1-seal", hdr + recipient_pub).derive(ikm)
    body = plain
    if kind == USER:
        body += signer.sign(b"mailpunch-v1-sign" + hdr + recipient_pub + plain)
    return hdr + ChaCha20Poly1305(okm[:32]).encrypt(okm[32:], body, hdr)


def main():
    sid = bytes(range(16))
    ts = struct.pack(">Q", 1800000000)
    user_sign, user_seal = epriv(0x11), xpriv(0x22)
    host = xpriv(0x33)
    peer_sign, peer_seal = epriv(0x66), xpriv(0x77)
    uid = hashlib.sha256(b"mailpunch-v1-uid" + pub(user_sign) + pub(user_seal)).digest()[:16]
    user_pubid = pub(user_sign) + pub(user_seal)
    cands = [(2, 4, bytes([198, 51, 100, 7]), 50001),
             (1, 6, bytes.fromhex("20010db8000000000000000000000042"), 4242)]
    nat = (3, 3, 2, -2)

    request = (sid + ts + user_pubid + str8("alice@example.org") + str8("Alice")
               + endpoints(cands, nat) + b"\0\0")
    reply = (sid + ts + bytes([1]) + pub(peer_sign) + pub(peer_seal) + str8("Bob")
             + endpoints(cands[:1], (1, 3, 1, 0)) + struct.pack(">I", 120) + bytes([1]) + b"\0\0")
    failure = (sid + ts + user_pubid + bytes([0xab]) * 16 + bytes([1]) + b"\0\0")

    if len(sys.argv) == 3 and sys.argv[1] == "--corpus":
        plains = [("request", REQUEST, request), ("reply", REPLY, reply), ("failure", FAILURE_NOTICE, failure)]
        for name, t, p in plains:
            with open(os.path.join(sys.argv[2], "plain-" + name + ".bin"), "wb") as f:
                f.write(bytes([1, t]) + p)

    vectors = [
        ("request", seal(REQUEST, USER, request, pub(host), xpriv(0x44), signer=user_sign)),
        ("reply", seal(REPLY, HOST, reply, pub(user_seal), xpriv(0x55), sender_host=host)),
        ("failure", seal(FAILURE_NOTICE, USER, failure, pub(host), xpriv(0x45), signer=user_sign)),
    ]
    for name, blk in vectors:
        if len(sys.argv) == 3:
            with open(os.path.join(sys.argv[2], name + ".bin"), "wb") as f:
                f.write(b"\0" + blk)
    if len(sys.argv) == 3:
        return
    print("# mailpunch v1 block test vectors, from tests/vectors/gen_vectors.py")
    print("# keys are 32 repeated bytes: user sign 0x11, user seal 0x22, host 0x33,")
    print("# peer sign 0x66, peer seal 0x77; ephemeral 0x44 (request), 0x55 (reply),")
    print("# 0x45 (failure); session ID 00..0f; time 1800000000.")
    print("uid " + uid.hex())
    for name, blk in vectors:
        print(f"{name} {blk.hex()}")


if __name__ == "__main__":
    main()
