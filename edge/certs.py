"""Development secrets: a private CA, a server and a client certificate signed by it, and
caller tokens. For `make certs` and `make cluster`; never committed (`.secrets/` is in
.gitignore).

    python -m edge.certs [--dir .secrets] [--host NAME ...]

Creates only what is missing, so running it again keeps the existing CA and tokens (and
every client configured with them):

    .secrets/ca.pem, ca.key            the dev CA (RECOMMENDER_CA=.secrets/ca.pem)
    .secrets/server.pem, server.key    SAN 127.0.0.1, ::1, localhost (+ --host names): Envoy,
                                       gateway and inference serve TLS with it
    .secrets/client.pem, client.key    CN gateway: the gateway's (and Envoy's)
                                       client certificate towards servers that require one
    .secrets/dev.token                 a random token for the caller `dev`
                                       (RECOMMENDER_TOKEN=$(cat .secrets/dev.token))
    .secrets/gateway.token             the token the gateway presents to inference
    .secrets/tokens.txt                `caller-name: sha256-of-token` lines (--tokens-file)

Keys and tokens are written 0600, the folder 0700. A certificate that expires within 30
days, or that the current CA did not sign, is issued again.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import ipaddress
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from recommender.security import hash_token, parse_tokens, token_line

CA_DAYS = 3650
LEAF_DAYS = 825
RENEW_WITHIN = datetime.timedelta(days=30)
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
CLIENT_NAME = "gateway"  # the common name inference logs as the caller of a token-less mTLS call
# Callers that get a token file: `dev` for people and tools, `gateway` for gateway -> inference.
TOKEN_CALLERS = ("dev", "gateway")


@dataclass(frozen=True)
class DevSecrets:
    """Paths of everything ensure_dev_secrets creates (all inside `dir`)."""

    dir: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    dev_token: Path
    gateway_token: Path
    tokens_file: Path
    created: tuple[str, ...] = field(default=(), compare=False)  # file names made this time

    @classmethod
    def at(cls, directory: str | os.PathLike, created: tuple[str, ...] = ()) -> DevSecrets:
        d = Path(directory)
        return cls(d, d / "ca.pem", d / "ca.key", d / "server.pem", d / "server.key",
                   d / "client.pem", d / "client.key", d / "dev.token", d / "gateway.token",
                   d / "tokens.txt", created)

    def token_path(self, caller: str) -> Path:
        return self.dir / f"{caller}.token"


# ------------------------------------------------------------------------------- files


def _write(path: Path, data: bytes, private: bool) -> None:
    """Write atomically (temp file + rename), 0600 for secrets, 0644 otherwise."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())  # fast to make, supported by gRPC and Envoy


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "recommender dev"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _san(hosts) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host.strip("[]"))))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


# ------------------------------------------------------------------------------- certificates


def make_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("recommender dev CA")).issuer_name(_name("recommender dev CA"))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue(ca_cert: x509.Certificate, ca_key, common_name: str, *, server: bool,
          hosts=()) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A leaf certificate signed by the CA: a server one (SAN = hosts) or a client one."""
    key = _new_key()
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                     key_cert_sign=False, crl_sign=False, content_commitment=False,
                                     data_encipherment=False, key_agreement=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if server:
        builder = builder.add_extension(_san(hosts), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _still_good(cert: x509.Certificate | None, ca_cert: x509.Certificate, hosts=()) -> bool:
    """Signed by this CA, not expiring soon, and (server) naming every wanted host."""
    if cert is None or cert.issuer != ca_cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
    except Exception:  # InvalidSignature, wrong key type
        return False
    if cert.not_valid_after_utc - _now() < RENEW_WITHIN:
        return False
    if hosts:
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        have = {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))
        want = {str(ipaddress.ip_address(h.strip("[]"))) if _is_ip(h) else h for h in hosts}
        if not want <= have:
            return False
    return True


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


# ------------------------------------------------------------------------------- the bundle


def ensure_dev_secrets(secrets_dir: str | os.PathLike = ".secrets", hosts=()) -> DevSecrets:
    """Create whatever of the dev CA, certificates and tokens is missing in `secrets_dir`;
    keep what exists. `hosts`: extra names/addresses for the server certificate."""
    paths = DevSecrets.at(secrets_dir)
    paths.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(paths.dir, 0o700)
    # Two programs starting at once (make cluster and a test) must not make two CAs.
    with _locked(paths.dir / ".lock"):
        return _ensure(paths, hosts)


@contextlib.contextmanager
def _locked(path: Path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _ensure(paths: DevSecrets, hosts) -> DevSecrets:
    created: list[str] = []
    server_hosts = tuple(dict.fromkeys((*DEFAULT_HOSTS, *hosts)))

    ca_cert = _load_cert(paths.ca_cert)
    if ca_cert is not None and not paths.ca_key.exists():
        # Certificates the CA would sign could not be made: better to say so than to
        # silently replace a CA that clients already trust.
        raise RuntimeError(f"{paths.ca_cert} exists but {paths.ca_key} is missing: restore the key, "
                           f"or delete {paths.dir} to start over with a new CA")
    if ca_cert is None or ca_cert.not_valid_after_utc - _now() < RENEW_WITHIN:
        ca_cert, ca_key = make_ca()
        _write(paths.ca_key, _key_pem(ca_key), private=True)
        _write(paths.ca_cert, _cert_pem(ca_cert), private=False)
        created += [paths.ca_cert.name, paths.ca_key.name]
    else:
        ca_key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)

    for cert_path, key_path, common_name, server in (
            (paths.server_cert, paths.server_key, "recommender dev server", True),
            (paths.client_cert, paths.client_key, CLIENT_NAME, False)):
        wanted_hosts = server_hosts if server else ()
        if key_path.exists() and _still_good(_load_cert(cert_path), ca_cert, wanted_hosts):
            continue
        cert, key = issue(ca_cert, ca_key, common_name, server=server, hosts=wanted_hosts)
        _write(key_path, _key_pem(key), private=True)
        _write(cert_path, _cert_pem(cert), private=False)
        created += [cert_path.name, key_path.name]

    created += _ensure_tokens(paths)
    return DevSecrets.at(paths.dir, tuple(created))


def _ensure_tokens(paths: DevSecrets) -> list[str]:
    created = []
    existing = paths.tokens_file.read_text(encoding="utf-8") if paths.tokens_file.exists() else ""
    entries = parse_tokens(existing, str(paths.tokens_file))
    lines = existing.splitlines()
    changed = False
    for caller in TOKEN_CALLERS:
        token_path = paths.token_path(caller)
        token = token_path.read_text(encoding="utf-8").strip() if token_path.exists() else ""
        if not token:
            token = secrets.token_urlsafe(32)
            _write(token_path, (token + "\n").encode(), private=True)
            created.append(token_path.name)
        if (caller, hash_token(token)) not in entries:
            lines.append(token_line(caller, token))
            changed = True
    if changed:
        if not existing:
            lines.insert(0, "# caller-name: sha256 of the caller's token (python -m edge.certs)")
        _write(paths.tokens_file, ("\n".join(lines) + "\n").encode(), private=True)
        created.append(paths.tokens_file.name)
    return created


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.certs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=".secrets", help="folder for the CA, certificates and tokens")
    parser.add_argument("--host", action="append", default=[],
                        help="extra host name or IP address for the server certificate (repeatable)")
    args = parser.parse_args(argv)
    result = ensure_dev_secrets(args.dir, hosts=args.host)
    made = ", ".join(result.created) if result.created else "nothing (all present)"
    print(f"dev secrets in {result.dir}/: created {made}")
    print(f"  export RECOMMENDER_CA={result.ca_cert}")
    print(f"  export RECOMMENDER_TOKEN=$(cat {result.dev_token})")
    print(f"  servers: --tls-cert {result.server_cert} --tls-key {result.server_key} "
          f"--tokens-file {result.tokens_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
