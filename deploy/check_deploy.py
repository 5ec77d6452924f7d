"""The Python half of scripts/check-deploy.sh: reads the Dockerfile, the rendered
Kubernetes manifests and dbpool's TOML, and checks them against each other or prints
what the shell half needs. One subcommand per use there:

  dockerfile                      the Dockerfile and .dockerignore against the workspace
  manifest RENDERED               the manifests against the image and the config
  config RENDERED OUT [ROOTFS]    writes the config the container sees; prints its env
                                  (with ROOTFS: its Secret files written there, and token
                                  files pointed there)
  env RENDERED ROOTFS [K=V...]    the environment of the serve test, one K=V a line
  secrets RENDERED ROOTFS         writes the Secret files dbpool mounts under ROOTFS
  token RENDERED                  the token the app container sends (DBPOOL_TOKEN), if any
  services RENDERED               the health services to check, one a line
  pools RENDERED                  the config's pool ids, one a line
  render KDIR OUT                 a stand-in for `kubectl kustomize` (no hash suffixes)

Run from the repository root, with PyYAML (the script's venv has it). A failed check
prints its reason on stderr and exits 1.
"""

import base64
import fnmatch
import hashlib
import ipaddress
import os
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import yaml

PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


# --- the Dockerfile ---------------------------------------------------------------------


def dockerfile(path="Dockerfile"):
    """Stages as {"from": ..., "ins": [(KEYWORD, args)]}, comments and continuations folded."""
    stages, buf = [], ""
    for line in Path(path).read_text().splitlines():
        if line.lstrip().startswith("#") and not buf:
            continue
        buf += line.rstrip()
        if buf.endswith("\\"):
            buf = buf[:-1] + " "
            continue
        word, _, args = buf.strip().partition(" ")
        if word.upper() == "FROM":
            stages.append({"from": args, "ins": []})
        elif word and stages:
            stages[-1]["ins"].append((word.upper(), args.strip()))
        buf = ""
    return stages


def runtime(stages, word):
    """The arguments of every `word` instruction of the last (runtime) stage."""
    return [a for w, a in stages[-1]["ins"] if w == word]


def image_env(stages):
    return dict(tok.partition("=")[::2] for a in runtime(stages, "ENV") for tok in shlex.split(a))


def image_uid(stages):
    users = runtime(stages, "USER")
    return users[-1].split(":")[0] if users else None


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def dockerignore_excludes():
    """Whether .dockerignore keeps a path out of the build context (last match wins; a
    pattern matching a parent directory matches the path)."""
    lines = Path(".dockerignore").read_text().splitlines()
    pats = [line.strip() for line in lines if line.strip() and not line.startswith("#")]

    def excluded(path):
        parts, out = path.split("/"), False
        for pat in pats:
            glob = pat.lstrip("!").rstrip("/")
            if any(fnmatch.fnmatch("/".join(parts[:i]), glob) for i in range(1, len(parts) + 1)):
                out = not pat.startswith("!")
        return out

    return excluded


def check_rust(workspace):
    """The build image's Rust is at least the workspace's rust-version, and the members
    are all under crates/, which skeleton.sh and `COPY crates` cover."""
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", Path("Dockerfile").read_text(), re.MULTILINE))
    have, need = args.get("RUST_VERSION", "0"), workspace["package"]["rust-version"]

    def version(v):
        return tuple(int(x) for x in v.split(".")[:2])

    if version(have) < version(need):
        fail(f"ARG RUST_VERSION={have} is below the workspace's rust-version {need}")
    stray = [m for m in workspace["members"] if not re.fullmatch(r"crates/[^/]+|benches/loadgen", m)]
    if stray:
        fail(f"workspace members outside crates/* and benches/loadgen, which the image build would miss: {stray}")
    return f"Rust {have} >= rust-version {need}"


def check_context(stages):
    """Every file a COPY takes from the context exists and passes .dockerignore, and the
    bulky or unrelated parts of the repository stay out."""
    excluded, copied = dockerignore_excludes(), 0
    copies = [
        a
        for stage in stages
        for word, a in stage["ins"]
        if word in ("COPY", "ADD") and "--from=" not in a
    ]
    for a in copies:
        for src in [t for t in shlex.split(a) if not t.startswith("--")][:-1]:
            if not os.path.exists(src):
                fail(f"COPY {src}: no such file in the build context")
            files = (
                [src]
                if os.path.isfile(src)
                else [os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs]
            )
            bad = [f for f in files if excluded(os.path.normpath(f))]
            if bad:
                fail(f"COPY {src}: {bad[0]} is excluded by .dockerignore")
            copied += len(files)
    for path in ("target/debug", ".git/HEAD", "clients/python/pyproject.toml"):
        if not excluded(path):
            fail(f".dockerignore lets {path} into the build context")
    return f"{copied} context files pass .dockerignore"


def check_runtime(stages):
    """The runtime stage sets the config, listen address and data directory, exposes the
    gRPC port and runs as a numeric non-root user."""
    env, uid = image_env(stages), image_uid(stages)
    for k in ("DBPOOL_CONFIG", "DBPOOL__SERVER__LISTEN", "DBPOOL__SERVER__DATA_DIR"):
        if k not in env:
            fail(f"the runtime stage sets no ENV {k}")
    if not uid or not re.fullmatch(r"[1-9]\d*", uid):
        fail(f"USER {uid}: must be a numeric uid other than 0, for runAsNonRoot")
    exposed = " ".join(runtime(stages, "EXPOSE")).split()
    if str(port_of(env["DBPOOL__SERVER__LISTEN"])) not in exposed:
        fail(f"EXPOSE {exposed} lacks the port of {env['DBPOOL__SERVER__LISTEN']}")
    return f"runtime {stages[-1]['from']}, uid {uid}, EXPOSE {' '.join(exposed)}"


def cmd_dockerfile():
    stages = dockerfile()
    workspace = tomllib.loads(Path("Cargo.toml").read_text())["workspace"]
    print("; ".join([check_rust(workspace), check_runtime(stages), check_context(stages)]))


# --- the manifests ----------------------------------------------------------------------


def load_docs(path):
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def find(objs, kind, name=None):
    return [o for o in objs if o["kind"] == kind and name in (None, o["metadata"]["name"])]


@dataclass
class Pod:
    """The dbpool container as the cluster would run it."""

    objs: list  # every object of the rendered manifests
    stages: list  # the Dockerfile
    deployment: dict
    spec: dict  # the pod spec
    container: dict  # the dbpool container
    apps: list  # the pod's other containers (the app)
    env: dict  # the image's ENV, then the container's env (secrets resolved)
    toml: str  # the config file the container sees

    @property
    def config(self):
        return tomllib.loads(self.toml)

    @property
    def server(self):
        return self.config.get("server", {})


def secret_value(objs, name, key):
    for s in find(objs, "Secret", name):
        if key in s.get("stringData", {}):
            return s["stringData"][key]
        if key in s.get("data", {}):
            return base64.b64decode(s["data"][key]).decode()
    fail(f"secretKeyRef {name}/{key}: no such Secret key in the manifests")


def pod(rendered):
    objs, stages = load_docs(rendered), dockerfile()
    found = [
        (d, d["spec"]["template"]["spec"], c)
        for d in find(objs, "Deployment")
        for c in (
            d["spec"]["template"]["spec"].get("initContainers", [])
            + d["spec"]["template"]["spec"].get("containers", [])
        )
        if re.search(r"(^|/)dbpool(:|@|$)", c["image"])
    ]
    if not found:
        fail("no Deployment runs an image named dbpool")
    dep, spec, c = found[0]
    env = image_env(stages)
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "secretKeyRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secret_value(objs, ref["name"], ref["key"])
        else:
            fail(f"env {e['name']}: only value and secretKeyRef are understood here")
    # The file DBPOOL_CONFIG names, from the ConfigMap volume mounted on its directory.
    path = env["DBPOOL_CONFIG"]
    mount = [
        m for m in c.get("volumeMounts", []) if m["mountPath"].rstrip("/") == os.path.dirname(path)
    ]
    if not mount:
        fail(f"nothing is mounted at {os.path.dirname(path)} (DBPOOL_CONFIG={path})")
    vol = next(v for v in spec.get("volumes", []) if v["name"] == mount[0]["name"])
    cm = find(objs, "ConfigMap", vol.get("configMap", {}).get("name"))
    key = os.path.basename(path)
    if not cm or key not in cm[0].get("data", {}):
        fail(f"{os.path.dirname(path)}: no ConfigMap with the key {key} is mounted there")
    apps = [o for o in spec.get("initContainers", []) + spec.get("containers", []) if o is not c]
    return Pod(objs, stages, dep, spec, c, apps, env, cm[0]["data"][key])


def probe_services(c):
    return {k: c[k]["grpc"].get("service", "") for k in PROBES if "grpc" in c.get(k, {})}


def is_tcp(addr):
    return not addr.startswith("unix:")


def is_loopback(addr):
    """Whether a listen address stays on the machine (the pod): a Unix socket or a
    loopback IP; anything else, a name included, is taken as reachable from outside."""
    if not is_tcp(addr):
        return True
    host = addr.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def setting(p, key, default=None):
    """A [server] key as the container sees it: its env, else the file, else the default."""
    env = p.env.get(f"DBPOOL__SERVER__{key.upper()}")
    return env if env is not None else p.server.get(key, default)


def api_addresses(p):
    """The addresses serving the API: listen and extra_listen."""
    return [setting(p, "listen", "127.0.0.1:50051")] + list(p.server.get("extra_listen", []))


def check_sidecar(p):
    """A native sidecar whose probes, ports and scrape annotation agree with the addresses
    dbpool listens on: the probes go to probe_listen (health only) when it is set, else
    to listen, and the kubelet must be able to reach that port (not loopback)."""
    c = p.container
    if c not in p.spec.get("initContainers", []) or c.get("restartPolicy") != "Always":
        fail(f"container {c['name']}: not a native sidecar (initContainers, restartPolicy: Always)")
    listen, probe = setting(p, "listen", "127.0.0.1:50051"), setting(p, "probe_listen")
    target = probe or listen
    if not is_tcp(target):
        fail(f"listen {listen} is a Unix socket and probe_listen is unset: no port for the probes")
    if is_loopback(target):
        fail(f"the probes' address {target} is loopback: the kubelet probes the pod IP")
    probe_port = port_of(target)
    ports = {port["containerPort"] for port in c.get("ports", [])}
    probes = probe_services(c)
    if set(probes) != set(PROBES):
        fail(f"gRPC probes: {sorted(probes)}; want {', '.join(PROBES)}")
    for k in probes:
        if c[k]["grpc"]["port"] != probe_port:
            fail(f"{k} port {c[k]['grpc']['port']} != {'probe_listen' if probe else 'listen'} port {probe_port}")
    if probe_port not in ports:
        fail(f"containerPort {probe_port} (probes) not declared")
    metrics = setting(p, "metrics_listen")
    annotations = p.deployment["spec"]["template"]["metadata"].get("annotations", {})
    if metrics and (
        port_of(metrics) not in ports
        or annotations.get("prometheus.io/port") != str(port_of(metrics))
    ):
        fail(f"metrics port {port_of(metrics)}: not both a containerPort and prometheus.io/port")
    return f"API on {listen}; probes {probes} on port {probe_port}"


def secret_ref(e):
    return e.get("valueFrom", {}).get("secretKeyRef")


def mounted_secret(p, path):
    """The (Secret, key) whose value the dbpool container sees as the file `path`, or
    None: a Secret volume mounted on the file (subPath) or on its directory."""
    vols = {v["name"]: v for v in p.spec.get("volumes", [])}
    for m in p.container.get("volumeMounts", []):
        secret = vols.get(m["name"], {}).get("secret")
        if not secret:
            continue
        mount = m["mountPath"].rstrip("/")
        if m.get("subPath"):
            rel = m["subPath"] if mount == path else None
        else:
            rel = path[len(mount) + 1 :] if path.startswith(mount + "/") else None
        if rel is None:
            continue
        items = secret.get("items")
        keys = [i["key"] for i in items if i["path"] == rel] if items else [rel]
        if keys:
            return secret["secretName"], keys[0]
    return None


def tenant_tokens(p, name, t):
    """How tenant `name` gets its tokens: [(token, where)], each token as dbpool would
    read it (a Secret's value for token_file and token_env), and the Secret's (name, key)
    or None for a hash."""
    out = []
    if "token_env" in t:
        var = t["token_env"]
        if var not in p.env:
            fail(f"tenants.{name}.token_env = {var}: not in the dbpool container's env")
        refs = [secret_ref(e) for e in p.container.get("env", []) if e["name"] == var]
        if not refs or not refs[-1]:
            fail(f"tenants.{name}.token_env = {var}: a literal value, not a secretKeyRef")
        out.append((p.env[var], (refs[-1]["name"], refs[-1]["key"])))
    if "token_file" in t:
        ref = mounted_secret(p, t["token_file"])
        if not ref:
            fail(f"tenants.{name}.token_file = {t['token_file']}: no Secret is mounted there")
        for line in secret_value(p.objs, *ref).splitlines():
            if line.strip():
                out.append((line.strip(), ref))
    return out


def check_auth(p):
    """Nobody unidentified beyond loopback: a config whose API listens beyond loopback
    has tenants (or says allow_unauthenticated). With tenants, each app container sends
    DBPOOL_TOKEN from a Secret (never a literal), and a tenant accepts that token: read
    from the same Secret key (token_file mounted, or token_env), or by its hash."""
    tenants = p.config.get("tenants", {})
    allow = str(setting(p, "allow_unauthenticated", False)).lower() == "true"
    exposed = [a for a in api_addresses(p) if not is_loopback(a)]
    if exposed and not tenants and not allow:
        fail(f"the API listens on {', '.join(exposed)} but the config has no [tenants]")
    if not tenants:
        return f"no tenants: API on {', '.join(api_addresses(p))} only"
    accepted = [(tok, ref, name) for name, t in tenants.items() for tok, ref in tenant_tokens(p, name, t)]
    hashes = {h.lower(): name for name, t in tenants.items() for h in t.get("token_sha256", [])}
    found = []
    for app in p.apps:
        env = [e for e in app.get("env", []) if e["name"] == "DBPOOL_TOKEN"]
        if not env:
            fail(f"container {app['name']}: no DBPOOL_TOKEN, but dbpool has tenants")
        ref = secret_ref(env[-1])
        if not ref:
            fail(f"container {app['name']}: DBPOOL_TOKEN is a literal value, not a secretKeyRef")
        token = secret_value(p.objs, ref["name"], ref["key"])
        same = [name for tok, r, name in accepted if r == (ref["name"], ref["key"]) and tok == token]
        digest = hashlib.sha256(token.encode()).hexdigest()
        if same:
            found.append(f"{app['name']} and dbpool share Secret {ref['name']}/{ref['key']} (tenant {same[0]})")
        elif digest in hashes:
            found.append(f"{app['name']}'s token matches tenants.{hashes[digest]}.token_sha256")
        else:
            fail(
                f"container {app['name']}: the token of Secret {ref['name']}/{ref['key']} "
                "is accepted by no tenant (token_file, token_env or token_sha256)"
            )
    return "; ".join(found) or "tenants, but no app container"


def check_security(p):
    """Non-root as the image's uid, read-only root with a writable data directory, no
    privilege escalation, no capabilities, seccomp; passwords from the env."""
    c, spec, env = p.container, p.spec, p.env
    psc, csc = spec.get("securityContext", {}), c.get("securityContext", {})
    seccomp = csc.get("seccompProfile") or psc.get("seccompProfile") or {}
    missing = [
        name
        for ok, name in [
            (psc.get("runAsNonRoot") or csc.get("runAsNonRoot"), "runAsNonRoot"),
            (csc.get("readOnlyRootFilesystem"), "readOnlyRootFilesystem"),
            (csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false"),
            ("ALL" in csc.get("capabilities", {}).get("drop", []), "capabilities drop ALL"),
            (seccomp.get("type") == "RuntimeDefault", "seccompProfile RuntimeDefault"),
        ]
        if not ok
    ]
    if missing:
        fail("securityContext lacks " + ", ".join(missing))
    run_as = csc.get("runAsUser", psc.get("runAsUser"))
    if run_as is not None and str(run_as) != image_uid(p.stages):
        fail(f"runAsUser {run_as} != the image's USER {image_uid(p.stages)}")
    mounts = {m["mountPath"].rstrip("/"): m for m in c.get("volumeMounts", [])}
    data_dir = env.get("DBPOOL__SERVER__DATA_DIR") or p.server.get("data_dir")
    if data_dir not in mounts or mounts[data_dir].get("readOnly"):
        fail(f"data_dir {data_dir} is not a writable volume (readOnlyRootFilesystem)")
    for pid, pool in p.config.get("pools", {}).items():
        if "password_env" in pool and pool["password_env"] not in env:
            fail(f"pools.{pid}.password_env = {pool['password_env']}: not in the container's env")
    grace = int(
        env.get("DBPOOL__SERVER__SHUTDOWN_GRACE_SECS", p.server.get("shutdown_grace_secs", 30))
    )
    period = spec.get("terminationGracePeriodSeconds", 30)
    if period <= grace:
        fail(f"terminationGracePeriodSeconds {period} must exceed shutdown_grace_secs {grace}")
    return f"grace {period}s > shutdown_grace_secs {grace}s"


def check_scaling(p):
    """The PDB, NetworkPolicy and HPA are about these pods; the most connections the
    database can see (docs/kubernetes.md, "Scaling out")."""
    labels = p.deployment["spec"]["template"]["metadata"]["labels"]

    def selects(sel):
        return all(labels.get(k) == v for k, v in sel.items())

    for o in find(p.objs, "PodDisruptionBudget"):
        if not selects(o["spec"]["selector"].get("matchLabels", {})):
            fail(f"PodDisruptionBudget {o['metadata']['name']} does not select the pods")
    for o in find(p.objs, "NetworkPolicy"):
        if not selects(o["spec"]["podSelector"].get("matchLabels", {})):
            fail(f"NetworkPolicy {o['metadata']['name']} does not select the pods")
    hpas = [
        h
        for h in find(p.objs, "HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]["name"] == p.deployment["metadata"]["name"]
    ]
    if not hpas:
        fail("no HorizontalPodAutoscaler scales the Deployment")
    surge = p.deployment["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", 0)
    pods = hpas[0]["spec"]["maxReplicas"] + (surge if isinstance(surge, int) else 0)
    conns = sum(pool.get("max_connections", 10) for pool in p.config.get("pools", {}).values())
    return (
        f"database connections at most {pods} pods x {conns} = {pods * conns} "
        "(HPA maxReplicas + maxSurge, times max_connections)"
    )


def cmd_manifest(rendered):
    p = pod(rendered)
    print("; ".join([check_sidecar(p), check_security(p)]))
    print(check_auth(p))
    print(check_scaling(p))


# --- what the shell half runs with ------------------------------------------------------


def print_env(env):
    for k, v in env.items():
        if "\n" in v:
            fail(f"{k}: a newline in the value")
        print(f"{k}={v}")


def cmd_config(rendered, out, rootfs=None):
    p = pod(rendered)
    Path(out).write_text(p.toml)
    env = {k: v for k, v in p.env.items() if k != "DBPOOL_CONFIG"}
    if rootfs:
        write_secrets(p, rootfs)
        env.update(token_files(p, rootfs))
    print_env(env)


def token_files(p, rootfs):
    """The overrides that point the tenants' absolute token files under ROOTFS, where
    write_secrets puts the Secrets the Deployment mounts."""
    return {
        f"DBPOOL__TENANTS__{name.upper()}__TOKEN_FILE": rootfs + t["token_file"]
        for name, t in p.config.get("tenants", {}).items()
        if t.get("token_file", "").startswith("/")
    }


def cmd_env(rendered, rootfs, *sets):
    """The image's and the container's environment, with the test's changes: absolute
    paths moved under ROOTFS, PostgreSQL pools on the local server, then SETS."""
    p = pod(rendered)
    env = {k: rootfs + v if v.startswith("/") else v for k, v in p.env.items()}
    for pid, pool in p.config.get("pools", {}).items():
        pre = f"DBPOOL__POOLS__{pid.upper()}__"
        if pool.get("url", "").startswith(("postgres", "pg")):
            env[pre + "URL"] = "postgres://postgres@127.0.0.1:5432/postgres"
        elif str(pool.get("db_type", "")).startswith(("postgres", "pg")):
            env.update(
                {
                    pre + "HOST": "127.0.0.1",
                    pre + "PORT": "5432",
                    pre + "DATABASE": "postgres",
                    pre + "USERNAME": "postgres",
                }
            )
    # Token files the Deployment mounts: where `secrets` writes them.
    env.update(token_files(p, rootfs))
    env.update(s.partition("=")[::2] for s in sets)
    print_env(env)


def cmd_secrets(rendered, rootfs):
    for path in write_secrets(pod(rendered), rootfs):
        print(path)


def write_secrets(p, rootfs):
    """The Secret volumes of the dbpool container, as the kubelet would mount them, under
    ROOTFS: a file per key on a directory mount, the one file of a subPath mount. Returns
    the files written."""
    written = []
    vols = {v["name"]: v for v in p.spec.get("volumes", [])}
    for m in p.container.get("volumeMounts", []):
        secret = vols.get(m["name"], {}).get("secret")
        if not secret:
            continue
        s = find(p.objs, "Secret", secret["secretName"])
        if not s:
            fail(f"volume {m['name']}: no Secret {secret['secretName']} in the manifests")
        keys = list(s[0].get("stringData", {})) + list(s[0].get("data", {}))
        files = {i["path"]: i["key"] for i in secret["items"]} if secret.get("items") else {k: k for k in keys}
        mount = Path(rootfs + m["mountPath"])
        if m.get("subPath"):
            files = {"": files[m["subPath"]]}
        for rel, key in files.items():
            path = mount / rel if rel else mount
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secret_value(p.objs, secret["secretName"], key))
            path.chmod(0o444)
            written.append(path)
    return written


def cmd_token(rendered):
    """The token the first app container sends (DBPOOL_TOKEN from its Secret), or nothing."""
    p = pod(rendered)
    for app in p.apps:
        for e in app.get("env", []):
            if e["name"] == "DBPOOL_TOKEN" and secret_ref(e):
                print(secret_value(p.objs, secret_ref(e)["name"], secret_ref(e)["key"]))
                return


def cmd_services(rendered):
    p = pod(rendered)
    services = dict.fromkeys(probe_services(p.container).values())
    services.update(dict.fromkeys(f"dbpool.pool.{pid}" for pid in p.config.get("pools", {})))
    print("\n".join(services))


def cmd_pools(rendered):
    """The pool ids of the config, one a line."""
    print("\n".join(pod(rendered).config.get("pools", {})))


def cmd_render(kdir, out):
    """What kustomize does for this kustomization: the resources, a ConfigMap per
    configMapGenerator (without the hash suffix), images: rewritten."""
    k = yaml.safe_load(Path(kdir, "kustomization.yaml").read_text())
    docs = []
    for r in k.get("resources", []):
        if not os.path.isfile(os.path.join(kdir, r)):
            fail(f"resource {r}: no such file")
        docs += load_docs(os.path.join(kdir, r))
    for g in k.get("configMapGenerator", []):
        data = {}
        for f in g.get("files", []):
            key, _, src = f.partition("=") if "=" in f else (os.path.basename(f), "", f)
            data[key] = Path(kdir, src).read_text()
        docs.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": g["name"]}, "data": data}
        )
    images = {i["name"]: i for i in k.get("images", [])}
    for d in docs:
        spec = d.get("spec", {}).get("template", {}).get("spec", {})
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            if c["image"] in images:
                i = images[c["image"]]
                c["image"] = f"{i.get('newName', c['image'])}:{i.get('newTag', 'latest')}"
    Path(out).write_text(yaml.safe_dump_all(docs, sort_keys=False))


COMMANDS = {name[4:]: f for name, f in list(globals().items()) if name.startswith("cmd_")}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        fail(f"usage: {sys.argv[0]} {'|'.join(COMMANDS)} ARGS... (see the docstring)")
    COMMANDS[sys.argv[1]](*sys.argv[2:])
