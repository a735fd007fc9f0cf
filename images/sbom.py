#!/usr/bin/env python3
"""A CycloneDX 1.5 JSON SBOM for one Vigil image, from `cargo metadata` and dpkg.

Used by scripts/build-images.sh. Deterministic: the same inputs give the same bytes (the
timestamp is SOURCE_DATE_EPOCH, the serial number a hash of the content, everything sorted),
so the SBOM does not break the image's reproducibility.

  cargo metadata --format-version 1 --locked --filter-platform x86_64-unknown-linux-gnu \
    | images/sbom.py --image ghcr.io/vigil-dev/vigil-agent --version 0.1.0 \
        --revision SHA --epoch 1700000000 --root node-agent --root node-agent-ebpf \
        --lockfile Cargo.lock --file /lib/x86_64-linux-gnu/libc.so.6 ... > sbom.cdx.json

Components: every crate compiled into the binary (the normal-dependency closure of each
--root, build and dev dependencies left out), with the registry checksum from Cargo.lock, and
the Debian package of every --file (the shared libraries copied into the image).
"""

import argparse
import datetime
import hashlib
import json
import subprocess
import sys
import tomllib
import urllib.parse
import uuid

CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"


def closure(metadata, roots):
    """Package ids reached from the workspace packages named in roots by normal dependencies."""
    by_name = {}
    for pkg in metadata["packages"]:
        if pkg["id"] in metadata["workspace_members"]:
            by_name[pkg["name"]] = pkg["id"]
    missing = [r for r in roots if r not in by_name]
    if missing:
        sys.exit(f"sbom.py: no workspace package named {', '.join(missing)}")
    nodes = {n["id"]: n for n in metadata["resolve"]["nodes"]}
    root_ids = [by_name[r] for r in roots]
    seen, stack, edges = set(), list(root_ids), {}
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        edges[pid] = []
        for dep in nodes[pid]["deps"]:
            if any(k["kind"] is None for k in dep["dep_kinds"]):
                edges[pid].append(dep["pkg"])
                stack.append(dep["pkg"])
    return seen, edges, root_ids


def purl_cargo(pkg):
    if pkg.get("source") == CRATES_IO:
        return f"pkg:cargo/{pkg['name']}@{pkg['version']}"
    return None


def deb_component(path):
    """The Debian package owning path, as a component (None when dpkg does not know it)."""
    try:
        owner = subprocess.run(
            ["dpkg-query", "--search", path], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    package = owner.split(":", 1)[0].strip()
    fields = subprocess.run(
        ["dpkg-query", "--show", "--showformat=${Version}\t${Architecture}", package],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    version, arch = fields.split("\t")
    purl = "pkg:deb/debian/{}@{}?arch={}".format(
        package, urllib.parse.quote(version, safe=""), arch
    )
    return {
        "type": "library",
        "bom-ref": purl,
        "name": package,
        "version": version,
        "purl": purl,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--image", required=True, help="image name without the tag")
    ap.add_argument("--version", required=True)
    ap.add_argument("--revision", required=True)
    ap.add_argument("--epoch", required=True, type=int, help="SOURCE_DATE_EPOCH")
    ap.add_argument("--root", action="append", required=True, help="workspace package")
    ap.add_argument("--lockfile", required=True)
    ap.add_argument("--file", action="append", default=[], help="a system file in the image")
    args = ap.parse_args()

    metadata = json.load(sys.stdin)
    with open(args.lockfile, "rb") as f:
        checksums = {
            (p["name"], p["version"]): p["checksum"]
            for p in tomllib.load(f).get("package", [])
            if "checksum" in p
        }
    packages = {p["id"]: p for p in metadata["packages"]}
    ids, edges, roots = closure(metadata, args.root)

    refs = {}
    components = []
    for pid in ids:
        pkg = packages[pid]
        purl = purl_cargo(pkg)
        ref = purl or f"vigil:{pkg['name']}@{pkg['version']}"
        refs[pid] = ref
        c = {
            "type": "library",
            "bom-ref": ref,
            "name": pkg["name"],
            "version": pkg["version"],
        }
        if purl:
            c["purl"] = purl
        if pkg.get("license"):
            c["licenses"] = [{"expression": pkg["license"]}]
        checksum = checksums.get((pkg["name"], pkg["version"]))
        if checksum:
            c["hashes"] = [{"alg": "SHA-256", "content": checksum}]
        components.append(c)
    debs = {}
    for path in args.file:
        c = deb_component(path)
        if c:
            debs[c["bom-ref"]] = c
    components.extend(debs.values())
    components.sort(key=lambda c: (c["name"], c["version"], c["bom-ref"]))

    image_ref = f"{args.image}:{args.version}"
    dependencies = [
        {"ref": refs[pid], "dependsOn": sorted({refs[d] for d in deps})}
        for pid, deps in edges.items()
    ]
    dependencies.append(
        {"ref": image_ref, "dependsOn": sorted({refs[r] for r in roots} | set(debs))}
    )
    dependencies.sort(key=lambda d: d["ref"])
    created = datetime.datetime.fromtimestamp(args.epoch, datetime.timezone.utc)
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "timestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {
                "components": [{"type": "application", "name": "vigil images/sbom.py"}]
            },
            "component": {
                "type": "container",
                "bom-ref": image_ref,
                "name": args.image,
                "version": args.version,
                "properties": [
                    {"name": "org.opencontainers.image.revision", "value": args.revision}
                ],
            },
        },
        "components": components,
        "dependencies": dependencies,
    }
    body = json.dumps(bom, sort_keys=True).encode()
    bom["serialNumber"] = "urn:uuid:" + str(
        uuid.uuid5(uuid.NAMESPACE_URL, hashlib.sha256(body).hexdigest())
    )
    json.dump(bom, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
