"""Throwaway TLS material for the mock hub: a CA, a server certificate for localhost/127.0.0.1,
a second one for a wrong host name (fault injection), and the RSA key that signs tokens.

Everything is made once in the state folder and reused on the next start, so a node provisioned
with the CA keeps working across restarts. Files are written to a temp name and renamed.
"""

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

WRONG_HOST = "wrong-host.invalid"


def write_atomic(path, data):
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_or_make_key(path, bits=2048):
    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    write_atomic(path, _key_pem(key))
    return key


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mockhub (throwaway, local testing only)")])


def _validity(builder):
    now = datetime.datetime.now(datetime.timezone.utc)
    # wide window: simulated clocks on the node may run years ahead of the host
    return builder.not_valid_before(now - datetime.timedelta(days=2)).not_valid_after(
        now + datetime.timedelta(days=3650))


def _make_ca(key):
    builder = _validity(x509.CertificateBuilder().subject_name(_name("mockhub local CA"))
                        .issuer_name(_name("mockhub local CA")).public_key(key.public_key())
                        .serial_number(x509.random_serial_number()))
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    builder = builder.add_extension(x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
        critical=True)
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    return builder.sign(key, hashes.SHA256())


def _make_leaf(ca_cert, ca_key, key, host_names, ips):
    sans = [x509.DNSName(h) for h in host_names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    builder = _validity(x509.CertificateBuilder().subject_name(_name(host_names[0]))
                        .issuer_name(ca_cert.subject).public_key(key.public_key())
                        .serial_number(x509.random_serial_number()))
    builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    builder = builder.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                                    critical=False)
    builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                    critical=False)
    return builder.sign(ca_key, hashes.SHA256())


class TLSMaterial:
    """Paths of the CA (DER and PEM), the server chains and the token-signing key in state_dir/tls."""

    def __init__(self, state_dir):
        d = Path(state_dir) / "tls"
        d.mkdir(parents=True, exist_ok=True)
        self.dir = d
        self.ca_pem_path = d / "ca.pem"
        self.ca_der_path = d / "ca.der"
        self.server_pem_path = d / "server.pem"          # leaf + key, SAN localhost and 127.0.0.1
        self.wrong_host_pem_path = d / "wrong-host.pem"  # leaf + key for WRONG_HOST only
        self.signing_key_path = d / "token-signing-key.pem"
        self._ensure()
        self.signing_key = _load_or_make_key(self.signing_key_path)

    def _ensure(self):
        if all(p.exists() for p in (self.ca_pem_path, self.ca_der_path, self.server_pem_path,
                                    self.wrong_host_pem_path)):
            return
        ca_key = _load_or_make_key(self.dir / "ca-key.pem")
        ca = _make_ca(ca_key)
        for path, hosts, ips in ((self.server_pem_path, ["localhost"], ["127.0.0.1"]),
                                 (self.wrong_host_pem_path, [WRONG_HOST], [])):
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            leaf = _make_leaf(ca, ca_key, key, hosts, ips)
            write_atomic(path, leaf.public_bytes(serialization.Encoding.PEM) + _key_pem(key))
        write_atomic(self.ca_der_path, ca.public_bytes(serialization.Encoding.DER))
        write_atomic(self.ca_pem_path, ca.public_bytes(serialization.Encoding.PEM))

    @property
    def ca_der(self):
        return self.ca_der_path.read_bytes()
