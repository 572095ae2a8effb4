// A small PKI made with the OpenSSL CLI for x509-verify.test.ts: a root, an
// intermediate with pathlen:0 (an openssl ca directory, which issues the
// dated certificates and the CRL), leaves for each failure the chain
// verification must name, and `openssl verify` to compare verdicts with.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requireTool } from "../../tools/programs.js";

const EXT = `
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[inter]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[subca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
[server]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:device.example
[client]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:device.example
[badku]
basicConstraints = CA:FALSE
keyUsage = critical, dataEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:device.example
`;

const caConfig = (dir: string) => `
[ca]
default_ca = inter_ca
[inter_ca]
dir = ${dir}/ca
database = $dir/index.txt
new_certs_dir = $dir/new
certificate = ${dir}/inter.crt
private_key = ${dir}/inter.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
policy = policy_any
unique_subject = no
default_crl_days = 30
[policy_any]
commonName = supplied
`;

/** Where each fixture file lies (PEM). */
export interface Pki {
  dir: string;
  root: string;
  otherRoot: string;
  inter: string;
  /** A CA under the pathlen:0 intermediate: its leaves' path is too long. */
  subca: string;
  server: string;
  client: string;
  badKu: string;
  expired: string;
  future: string;
  revoked: string;
  deep: string;
  /** Issued by the server leaf, which is no CA. */
  evil: string;
  /** The intermediate's CRL (openssl ca -gencrl), listing `revoked`. */
  crl: string;
  /** notBefore of the chain's certificates made today (the root's), for `at` before it. */
  made: Date;
}

export function makePki(dir: string): Pki {
  const openssl = requireTool("openssl");
  const run = (args: string[]) => execFileSync(openssl, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  const p = (f: string) => join(dir, f);
  writeFileSync(p("ext.cnf"), EXT);
  mkdirSync(p("ca/new"), { recursive: true });
  writeFileSync(p("ca/index.txt"), "");
  writeFileSync(p("ca/serial"), "1000\n");
  writeFileSync(p("ca/crlnumber"), "01\n");
  writeFileSync(p("ca.cnf"), caConfig(dir));
  const key = (name: string) => run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", `${name}.key`]);
  const csr = (name: string, cn: string) => {
    key(name);
    run(["req", "-new", "-key", `${name}.key`, "-subj", `/CN=${cn}`, "-out", `${name}.csr`]);
  };
  // openssl req -x509 reads extensions from its config: give it ext.cnf's [root].
  const rootCert = (name: string, cn: string) => {
    key(name);
    run(
      ["req", "-x509", "-new", "-key", `${name}.key`, "-subj", `/O=mbedlink test/CN=${cn}`, "-days", "3650", "-sha256"].concat([
        "-config",
        "ext.cnf",
        "-extensions",
        "root",
        "-out",
        `${name}.crt`,
      ]),
    );
  };
  const signBy = (ca: string, name: string, ext: string, serial: number) =>
    run(
      [
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        `${ca}.crt`,
        "-CAkey",
        `${ca}.key`,
        "-set_serial",
        String(serial),
        "-days",
        "365",
      ].concat(["-sha256", "-extfile", "ext.cnf", "-extensions", ext, "-out", `${name}.crt`]),
    );
  const caIssue = (name: string, ext: string, start: string, end: string) =>
    run(
      ["ca", "-batch", "-config", "ca.cnf", "-extfile", "ext.cnf", "-extensions", ext, "-in", `${name}.csr`, "-out", `${name}.crt`].concat([
        "-startdate",
        start,
        "-enddate",
        end,
        "-notext",
      ]),
    );
  const made = new Date(Math.floor(Date.now() / 1000) * 1000);
  rootCert("root", "Test Root");
  rootCert("other", "Other Root");
  // name, subject CN, issuer, extensions section, serial
  const issued: [string, string, string, string, number][] = [
    ["inter", "Test Intermediate", "root", "inter", 2],
    ["subca", "Sub CA", "inter", "subca", 3],
    ["server", "device.example", "inter", "server", 10],
    ["client", "device.example", "inter", "client", 11],
    ["badku", "device.example", "inter", "badku", 12],
    ["deep", "device.example", "subca", "server", 13],
    ["evil", "device.example", "server", "server", 14],
  ];
  for (const [name, cn, ca, ext, serial] of issued) {
    csr(name, cn);
    signBy(ca, name, ext, serial);
  }
  // openssl ca for the dated ones (YYYYMMDDHHMMSSZ)
  for (const [name, start, end] of [
    ["expired", "20200101000000Z", "20210101000000Z"],
    ["future", "20900101000000Z", "20910101000000Z"],
    ["revoked", "20240101000000Z", "20400101000000Z"],
  ] as const) {
    csr(name, "device.example");
    caIssue(name, "server", start, end);
  }
  run(["ca", "-config", "ca.cnf", "-revoke", "revoked.crt"]);
  run(["ca", "-config", "ca.cnf", "-gencrl", "-out", "inter.crl"]);
  return {
    dir,
    root: p("root.crt"),
    otherRoot: p("other.crt"),
    inter: p("inter.crt"),
    subca: p("subca.crt"),
    server: p("server.crt"),
    client: p("client.crt"),
    badKu: p("badku.crt"),
    expired: p("expired.crt"),
    future: p("future.crt"),
    revoked: p("revoked.crt"),
    deep: p("deep.crt"),
    evil: p("evil.crt"),
    crl: p("inter.crl"),
    made,
  };
}

export interface OpensslVerifyOptions {
  untrusted?: string[];
  purpose?: "server" | "client";
  hostname?: string;
  crl?: string;
  at?: Date;
}

/** `openssl verify`'s verdict: ok, or its error line ("error 10 at 0 depth lookup: certificate has expired"). */
export function opensslVerify(ca: string, leaf: string, o: OpensslVerifyOptions = {}): { ok: boolean; error: string } {
  const args = ["verify", "-CAfile", ca];
  for (const u of o.untrusted ?? []) args.push("-untrusted", u);
  if (o.purpose) args.push("-purpose", o.purpose === "server" ? "sslserver" : "sslclient");
  if (o.hostname) args.push("-verify_hostname", o.hostname);
  if (o.crl) args.push("-crl_check", "-CRLfile", o.crl);
  if (o.at) args.push("-attime", String(Math.floor(o.at.getTime() / 1000)));
  args.push(leaf);
  const r = spawnSync(requireTool("openssl"), args, { encoding: "utf8" });
  const out = `${r.stdout}${r.stderr}`;
  return { ok: r.status === 0 && /: OK\s*$/.test(r.stdout), error: out.match(/error \d+ at \d+ depth lookup: ([^\n]*)/)?.[1] ?? "" };
}
