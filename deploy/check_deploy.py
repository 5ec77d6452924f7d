"""The Python half of scripts/check-deploy.sh: reads the Dockerfile, the rendered
Kubernetes manifests and dbpool's TOML, and checks them against each other or prints
what the shell half needs. One subcommand per use there:

  dockerfile                      the Dockerfile and .dockerignore against the workspace
  manifest RENDERED               the manifests against the image and the config
  config RENDERED OUT             writes the config the container sees; prints its env
  env RENDERED ROOTFS [K=V...]    the environment of the serve test, one K=V a line
  services RENDERED               the health services to check, one a line
  render KDIR OUT                 a stand-in for `kubectl kustomize` (no hash suffixes)

Run from the repository root, with PyYAML (the script's venv has it). A failed check
prints its reason on stderr and exits 1.
"""

import base64
import fnmatch
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
    return Pod(objs, stages, dep, spec, c, env, cm[0]["data"][key])


def probe_services(c):
    return {k: c[k]["grpc"].get("service", "") for k in PROBES if "grpc" in c.get(k, {})}


def check_sidecar(p):
    """A native sidecar whose probes, ports and scrape annotation agree with the addresses
    dbpool listens on."""
    c, env = p.container, p.env
    if c not in p.spec.get("initContainers", []) or c.get("restartPolicy") != "Always":
        fail(f"container {c['name']}: not a native sidecar (initContainers, restartPolicy: Always)")
    grpc_port = port_of(env["DBPOOL__SERVER__LISTEN"])
    ports = {port["containerPort"] for port in c.get("ports", [])}
    probes = probe_services(c)
    if set(probes) != set(PROBES):
        fail(f"gRPC probes: {sorted(probes)}; want {', '.join(PROBES)}")
    for k in probes:
        if c[k]["grpc"]["port"] != grpc_port:
            fail(f"{k} port {c[k]['grpc']['port']} != listen port {grpc_port}")
    if grpc_port not in ports:
        fail(f"containerPort {grpc_port} (gRPC) not declared")
    metrics = env.get("DBPOOL__SERVER__METRICS_LISTEN") or p.server.get("metrics_listen")
    annotations = p.deployment["spec"]["template"]["metadata"].get("annotations", {})
    if metrics and (
        port_of(metrics) not in ports
        or annotations.get("prometheus.io/port") != str(port_of(metrics))
    ):
        fail(f"metrics port {port_of(metrics)}: not both a containerPort and prometheus.io/port")
    return f"probes {probes}"


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
    print(check_scaling(p))


# --- what the shell half runs with ------------------------------------------------------


def print_env(env):
    for k, v in env.items():
        if "\n" in v:
            fail(f"{k}: a newline in the value")
        print(f"{k}={v}")


def cmd_config(rendered, out):
    p = pod(rendered)
    Path(out).write_text(p.toml)
    print_env({k: v for k, v in p.env.items() if k != "DBPOOL_CONFIG"})


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
    env.update(s.partition("=")[::2] for s in sets)
    print_env(env)


def cmd_services(rendered):
    p = pod(rendered)
    services = dict.fromkeys(probe_services(p.container).values())
    services.update(dict.fromkeys(f"dbpool.pool.{pid}" for pid in p.config.get("pools", {})))
    print("\n".join(services))


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
