#!/usr/bin/env python3
"""Independent DSSE implementation for Recheck's interop test (tests/attest.rs).

Uses securesystemslib (the DSSE implementation of the TUF / in-toto projects)
and pyca/cryptography; nothing here shares code with Recheck.

  check-deps                      exit 0 if the packages import, else 3
  verify ENVELOPE PUBKEY_PEM      exit 0 "verified keyid ..." / 1 "rejected: ..."
  sign STATEMENT_JSON OUTDIR      writes OUTDIR/python.pub.pem and
                                  OUTDIR/python.envelope.json, prints the keyid

Key ids are computed here as Recheck documents them (hex sha256 of the
public key's SPKI DER), so agreement on ids is checked as well. The payload
this script signs is its own canonical JSON of the statement (sorted keys,
no whitespace, UTF-8), so Recheck's canonical form is checked against a
second serializer too.
"""

import hashlib
import json
import sys

INSTALL = "pip install 'securesystemslib[crypto]'"


def deps():
    try:
        import cryptography
        import securesystemslib
        from securesystemslib import dsse, signer  # noqa: F401
    except ImportError as e:
        print(f"missing Python package ({e}); install with: {INSTALL}", file=sys.stderr)
        sys.exit(3)
    return securesystemslib.__version__, cryptography.__version__


def spki_keyid(public_key):
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def canonical(value):
    # Enough of RFC 8785 for statements without floats or non-BMP keys.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def verify(envelope_path, key_path):
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    with open(key_path, "rb") as f:
        public_key = serialization.load_pem_public_key(f.read())
    keyid = spki_keyid(public_key)
    key = SSlibKey.from_crypto(public_key, keyid=keyid)
    with open(envelope_path, encoding="utf-8") as f:
        envelope = Envelope.from_dict(json.load(f))
    try:
        envelope.verify([key], 1)
    except Exception as e:  # VerificationError and friends
        print(f"rejected: {type(e).__name__}: {e}")
        return 1
    print(f"verified keyid {keyid} payloadType {envelope.payload_type}")
    payload = envelope.payload
    print(f"canonical: {str(canonical(json.loads(payload)) == payload).lower()}")
    return 0


def sign(statement_path, outdir):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import CryptoSigner, SSlibKey

    private_key = Ed25519PrivateKey.generate()
    public_key = private_key.public_key()
    keyid = spki_keyid(public_key)
    signer = CryptoSigner(private_key, SSlibKey.from_crypto(public_key, keyid=keyid))
    with open(statement_path, encoding="utf-8") as f:
        statement = json.load(f)
    envelope = Envelope(canonical(statement), "application/vnd.in-toto+json", {})
    envelope.sign(signer)
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with open(f"{outdir}/python.pub.pem", "wb") as f:
        f.write(pem)
    with open(f"{outdir}/python.envelope.json", "w", encoding="utf-8") as f:
        json.dump(envelope.to_dict(), f, indent=2)
    print(f"signed keyid {keyid}")
    return 0


def main(argv):
    versions = deps()
    if argv[:1] == ["check-deps"]:
        print("securesystemslib %s, cryptography %s" % versions)
        return 0
    if argv[:1] == ["verify"] and len(argv) == 3:
        return verify(argv[1], argv[2])
    if argv[:1] == ["sign"] and len(argv) == 3:
        return sign(argv[1], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
