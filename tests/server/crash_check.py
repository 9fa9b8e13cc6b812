#!/usr/bin/env python3
"""tests/server/crash_check.py - checks that everything a killed server acknowledged survived.

Used by crash_test.sh after each restart:

    crash_check.py --url https://127.0.0.1:PORT --ca DIR/tls/cert.pem \\
        --token-file DIR/admin.token --acks acks.txt [--label "round 3"]

acks.txt holds one tab-separated line per acknowledged answer:
    K  name  version                       key created (version 1) or rotated to version
    C  name  plaintext-b64  context|-  ct  ciphertext from encrypt or datakey
    S  kek   hex|-                         seed KEK from POST /new (and its data key from POST /key)

Checks, over one keep-alive TLS connection verified against --ca:
  - GET /v1/keys/NAME: 200, latest_version >= the highest acknowledged,
    versions exactly 1..latest_version, all active;
  - every name in GET /v1/keys: GET 200 and a wrapped data key 200 (no key is
    visible half-created or half-rotated); every acknowledged name is listed;
  - POST /v1/keys/NAME/decrypt of every acknowledged ciphertext (with its
    context) gives the recorded plaintext;
  - POST /key with every acknowledged seed KEK: 200 and 32 bytes, the same as
    recorded; a KEK whose /key answer was not acknowledged before the kill gets
    its bytes recorded now (appended to acks.txt) for the following rounds;
  - GET / counts at least all acknowledged keys and seed KEKs.
Prints "ok   - ..." / "FAIL - ..." lines (at most 5 details per check); exits 1 on any failure.
"""
import argparse
import http.client
import json
import re
import ssl
import sys
import urllib.parse

MAX_DETAILS = 5


class Client:
    def __init__(self, url, ca, token):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.token = token
        self.conn = None

    def request(self, method, path, body=None, ctype="application/json"):
        """Returns (status, bytes); reconnects once when a kept-alive connection was closed."""
        headers = {"Authorization": "Bearer " + self.token}
        if body is not None:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            elif isinstance(body, str):
                body = body.encode()
            headers["Content-Type"] = ctype
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                                        timeout=30)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, data
            except (http.client.HTTPException, ConnectionError, ssl.SSLError, OSError) as e:
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt:
                    return 0, str(e).encode()
        return 0, b""


def jbody(data):
    try:
        return json.loads(data)
    except ValueError:
        return None


class Report:
    def __init__(self, label):
        self.label = label
        self.failed = 0

    def check(self, name, problems, count):
        if problems:
            self.failed += 1
            print(f"FAIL - {self.label}: {name}: {len(problems)} of {count} wrong")
            for p in problems[:MAX_DETAILS]:
                print(f"       {p}")
        else:
            print(f"ok   - {self.label}: {name} ({count})")


def load_acks(path):
    keys, cts, seeds = {}, [], {}
    problems = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            p = line.rstrip("\n").split("\t")
            if p[0] == "K" and len(p) == 3:
                keys[p[1]] = max(keys.get(p[1], 0), int(p[2]))
            elif p[0] == "C" and len(p) == 5:
                cts.append((p[1], p[2], p[3], p[4]))
            elif p[0] == "S" and len(p) == 3:
                old = seeds.get(p[1], "-")
                if p[2] != "-" and old != "-" and old != p[2]:
                    problems.append(f"acks line {n}: POST /key gave two different data keys for one KEK")
                if p[2] != "-":
                    seeds[p[1]] = p[2]
                else:
                    seeds.setdefault(p[1], "-")
            else:
                problems.append(f"acks line {n}: malformed record {line[:80]!r}")
    return keys, cts, seeds, problems


def short(data):
    return data[:160].decode("utf-8", "replace").replace("\n", " ")


def check_keys(c, rep, keys):
    problems = []
    for name, want in sorted(keys.items()):
        st, data = c.request("GET", "/v1/keys/" + name)
        m = jbody(data) if st == 200 else None
        if not isinstance(m, dict):
            problems.append(f"GET /v1/keys/{name}: HTTP {st} {short(data)}")
            continue
        latest = m.get("latest_version", 0)
        vers = [v.get("version") for v in m.get("versions", [])]
        states = {v.get("state") for v in m.get("versions", [])}
        if not isinstance(latest, int) or latest < want:
            problems.append(f"{name}: latest_version {latest}, acknowledged {want}")
        elif sorted(vers) != list(range(1, latest + 1)) or states != {"active"}:
            problems.append(f"{name}: latest_version {latest} but versions {vers} states {states}")
    rep.check("acknowledged keys readable at their acknowledged version or later", problems,
              len(keys))


def check_listed(c, rep, keys):
    st, data = c.request("GET", "/v1/keys")
    body = jbody(data) if st == 200 else None
    if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
        rep.check("GET /v1/keys", [f"HTTP {st} {short(data)}"], 1)
        return []
    listed = body["keys"]
    missing = sorted(set(keys) - set(listed))
    rep.check("every acknowledged key is listed by GET /v1/keys",
              [f"{n} missing from the list" for n in missing], len(keys))
    problems = []
    for name in listed:
        st, data = c.request("GET", "/v1/keys/" + name)
        if st != 200:
            problems.append(f"listed {name}: GET HTTP {st} {short(data)}")
            continue
        st, data = c.request("POST", f"/v1/keys/{name}/datakey", {"wrapped_only": True})
        m = jbody(data) if st == 200 else None
        if not isinstance(m, dict) or not str(m.get("ciphertext", "")).startswith("sbx:v"):
            problems.append(f"listed {name}: datakey HTTP {st} {short(data)}")
    rep.check("every listed key (acknowledged or not) is whole: GET and a data key work", problems,
              len(listed))
    return listed


def check_ciphertexts(c, rep, cts):
    problems = []
    for name, pt, ctx, ct in cts:
        req = {"ciphertext": ct}
        if ctx != "-":
            req["context"] = json.loads(ctx)
        st, data = c.request("POST", f"/v1/keys/{name}/decrypt", req)
        m = jbody(data) if st == 200 else None
        if not isinstance(m, dict):
            problems.append(f"decrypt {ct[:40]}... under {name}: HTTP {st} {short(data)}")
        elif m.get("plaintext") != pt:
            problems.append(f"decrypt {ct[:40]}... under {name}: 200 but another plaintext")
    rep.check("acknowledged ciphertexts decrypt to the recorded plaintext", problems, len(cts))


def check_seeds(c, rep, seeds, acks_path):
    problems, learned = [], []
    for kek, want in seeds.items():
        st, data = c.request("POST", "/key", kek, ctype="text/plain")
        if st != 200 or len(data) != 32:
            problems.append(f"POST /key with KEK {kek.split(':')[1]}: HTTP {st}, {len(data)} bytes")
        elif want == "-":
            learned.append((kek, data.hex()))
        elif data.hex() != want:
            problems.append(f"POST /key with KEK {kek.split(':')[1]}: other bytes than before the kill")
    rep.check("acknowledged seed KEKs give the same data key (POST /key)", problems, len(seeds))
    with open(acks_path, "a") as f:
        for kek, h in learned:
            f.write(f"S\t{kek}\t{h}\n")


def check_count(c, rep, keys, seeds):
    st, data = c.request("GET", "/")
    m = re.search(rb"holding (\d+) keys?", data) if st == 200 else None
    want = len(keys) + len(seeds)
    if not m:
        rep.check("GET / counts the keys", [f"HTTP {st} {short(data)}"], 1)
    else:
        n = int(m.group(1))
        rep.check(f"GET / holds {n} keys, at least the {want} acknowledged",
                  [] if n >= want else [f"{n} < {want}"], 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--acks", required=True)
    ap.add_argument("--label", default="check")
    a = ap.parse_args()
    with open(a.token_file) as f:
        token = f.read().strip()
    rep = Report(a.label)
    keys, cts, seeds, problems = load_acks(a.acks)
    rep.check("acknowledgement records well-formed and consistent", problems,
              len(keys) + len(cts) + len(seeds))
    c = Client(a.url, a.ca, token)
    st, data = c.request("GET", "/v1/health")
    rep.check("GET /v1/health after the restart", [] if st == 200 else [f"HTTP {st} {short(data)}"], 1)
    check_keys(c, rep, keys)
    check_listed(c, rep, keys)
    check_ciphertexts(c, rep, cts)
    check_seeds(c, rep, seeds, a.acks)
    check_count(c, rep, keys, seeds)
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
