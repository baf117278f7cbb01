"""Can each workload reach what it is configured to call, under the NetworkPolicies?

A default-deny namespace fails quietly: a job whose policy forgot its MLflow server or DNS
starts, times out and retries in the cluster, hours after the merge. So `manifests validate`
reads every endpoint a workload names (URLs and host:port in its containers' env values, args
and command, `$(VAR)` references resolved; the request logger URL of a SeldonDeployment) and
checks, on the rendered manifests alone:

- egress of the caller's pod (every policy selecting it, `policyTypes` as the API server
  defaults them), to the callee's pods and port, or for a destination outside the rendered set
  an `ipBlock` (external host) or a `namespaceSelector` (a cluster Service not rendered here);
- ingress of the callee's pods (Service name -> its selector -> the rendered pod templates
  whose labels it selects; the Service port -> targetPort -> the container port, by number or
  name), from the caller's namespace and pod labels;
- DNS: a name needs egress to kube-dns (`k8s-app: kube-dns` in kube-system) on 53/UDP and
  53/TCP.

Namespace labels come from rendered Namespace objects plus `kubernetes.io/metadata.name`, and
for the model overlays the labels the ApplicationSet puts on the namespaces it creates
(`managedNamespaceMetadata`), so a selector on `mlgate.io/models` is judged as the cluster
would. Pure: rendered manifest dicts in, findings out.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import posixpath
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

NS_NAME_LABEL = "kubernetes.io/metadata.name"
DNS_NAMESPACE = "kube-system"
DNS_POD_LABELS = {"k8s-app": "kube-dns"}
SCHEME_PORTS = {"http": 80, "https": 443, "ssh": 22, "git": 9418, "redis": 6379, "postgresql": 5432}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
_URL = re.compile(
    r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?:[^@/?#]*@)?(?P<host>\[[0-9a-fA-F:.]+\]|[^:/?#@]+)"
    r"(?::(?P<port>\d{1,5}))?(?:[/?#]|$)"
)
_SCP = re.compile(r"^[A-Za-z0-9._-]+@(?P<host>[A-Za-z0-9.-]+\.[A-Za-z]{2,}):(?!\d+$)\S")
_HOSTPORT = re.compile(r"^(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(?P<port>\d{1,5})$")
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_LOOPBACK = {"localhost", "0.0.0.0", "::", "::1"}


class Unreachable(BaseModel):
    """One endpoint a workload cannot reach, and which side's policy is missing."""

    target: str
    workload: str
    endpoint: str
    source: str  # where the workload names it: env NAME, args, logger
    side: str  # egress | ingress | dns | service
    message: str


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    text: str
    source: str


@dataclass
class Pod:
    target: str
    workload: str
    namespace: str
    labels: dict[str, str]
    endpoints: list[Endpoint] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)  # container port name -> number


@dataclass(frozen=True)
class Dest:
    """Where a connection goes: a rendered pod, a cluster namespace, or outside the cluster."""

    namespace: str | None
    labels: dict[str, str] | None  # pod labels; None when not known (not rendered)
    port: int
    port_name: str | None = None
    external: bool = False
    ip: str | None = None
    protocol: str = "TCP"


# --- label selectors and policies ------------------------------------------------------------


def selector_matches(sel: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels AND matchExpressions); empty selects everything."""
    sel = sel or {}
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != str(v):
            return False
    for e in sel.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), [str(v) for v in e.get("values") or []]
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


@dataclass
class Policy:
    name: str
    namespace: str
    spec: dict[str, Any]

    def types(self) -> list[str]:
        declared = self.spec.get("policyTypes")
        if declared:
            return list(declared)
        return ["Ingress"] + (["Egress"] if "egress" in self.spec else [])

    def selects(self, namespace: str, labels: dict[str, str]) -> bool:
        return self.namespace == namespace and selector_matches(
            self.spec.get("podSelector"), labels
        )


def _port_ok(ports: list[dict[str, Any]] | None, dest: Dest) -> bool:
    if not ports:
        return True
    for p in ports:
        if str(p.get("protocol") or "TCP") != dest.protocol:
            continue
        port = p.get("port")
        if port is None:
            return True
        if isinstance(port, int) or str(port).isdigit():
            lo, hi = int(port), int(p.get("endPort") or port)
            if lo <= dest.port <= hi:
                return True
        elif dest.port_name is not None and port == dest.port_name:
            return True
    return False


def _ip_in_block(ip: str, block: dict[str, Any]) -> bool:
    addr = ipaddress.ip_address(ip)
    try:
        if addr not in ipaddress.ip_network(str(block.get("cidr")), strict=False):
            return False
        return not any(
            addr in ipaddress.ip_network(str(x), strict=False) for x in block.get("except") or []
        )
    except ValueError:
        return False


def _peer_ok(
    peers: list[dict[str, Any]] | None,
    policy_ns: str,
    dest: Dest,
    ns_labels: dict[str, dict[str, str]],
) -> bool:
    if not peers:  # no `to`/`from`: every destination
        return True
    for peer in peers:
        if "ipBlock" in peer:
            # Pod IPs are not known before they run: an ipBlock admits only what leaves the
            # cluster (an external name, whose address is unknown too, or a literal address).
            if dest.external and (dest.ip is None or _ip_in_block(dest.ip, peer["ipBlock"])):
                return True
            continue
        if dest.external or dest.namespace is None:
            continue
        nsel, psel = peer.get("namespaceSelector"), peer.get("podSelector")
        if nsel is not None:
            known = ns_labels.get(dest.namespace) or {NS_NAME_LABEL: dest.namespace}
            if not selector_matches(nsel, known):
                continue
        elif dest.namespace != policy_ns:
            continue
        if psel is not None and dest.labels is not None and not selector_matches(psel, dest.labels):
            continue
        if psel is not None and dest.labels is None and nsel is None:
            continue  # a pod selector in the policy's namespace cannot admit an unknown pod
        return True
    return False


def _admitting(
    policies: list[Policy],
    direction: str,
    namespace: str,
    labels: dict[str, str],
    other: Dest,
    ns_labels: dict[str, dict[str, str]],
) -> tuple[bool, list[str]]:
    """(allowed, names of the policies that isolate this pod in `direction`)."""
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    isolating = [p for p in policies if direction in p.types() and p.selects(namespace, labels)]
    if not isolating:
        return True, []
    for p in isolating:
        for rule in p.spec.get(key) or []:
            if _peer_ok(rule.get(peers_key), p.namespace, other, ns_labels) and _port_ok(
                rule.get("ports"), other
            ):
                return True, [q.name for q in isolating]
    return False, sorted(q.name for q in isolating)


# --- what the rendered manifests hold --------------------------------------------------------


def _resolve(value: str, env: dict[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def parse_endpoint(text: str, source: str) -> Endpoint | None:
    """A URL (scheme's default port), an scp-style git remote (ssh, 22) or host:port; None for
    anything else, for loopback and for a URL without a host (file://)."""
    text = text.strip()
    host: str | None = None
    port: int | None = None
    m = _URL.match(text)
    if m:
        host = m.group("host").strip("[]")
        port = int(m.group("port")) if m.group("port") else SCHEME_PORTS.get(m.group("scheme"))
    elif m2 := _SCP.match(text):
        host, port = m2.group("host"), 22
    elif m3 := _HOSTPORT.match(text):
        host, port = m3.group("host"), int(m3.group("port"))
        if not (re.search(r"[A-Za-z]", host) or _is_ip(host)):
            return None  # "12:30" is a time, not an address
    if not host or port is None or not 0 < port < 65536:
        return None
    host = host.lower().rstrip(".")
    if not (re.fullmatch(r"[a-z0-9.-]+", host) or _is_ip(host)):
        return None  # e.g. an unresolved $(VAR): not an address
    if host in _LOOPBACK or host.startswith("127."):
        return None
    return Endpoint(host=host, port=port, text=text, source=source)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _container_endpoints(c: dict[str, Any]) -> list[Endpoint]:
    env: dict[str, str] = {}
    found: list[Endpoint] = []
    for e in c.get("env") or []:
        if "value" in e and e.get("name"):
            value = _resolve(str(e["value"]), env)
            env[str(e["name"])] = value
            ep = parse_endpoint(value, f"env {e['name']}")
            if ep:
                found.append(ep)
    for key in ("command", "args"):
        for arg in c.get(key) or []:
            raw = str(arg)
            if _VAR.fullmatch(raw.strip()):
                continue  # the env value it names was read above
            ep = parse_endpoint(_resolve(raw, env), key)
            if ep:
                found.append(ep)
    return found


def _ports(containers: list[dict[str, Any]]) -> dict[str, int]:
    return {
        str(p["name"]): int(p["containerPort"])
        for c in containers
        for p in c.get("ports") or []
        if p.get("name") and p.get("containerPort")
    }


def _graph_loggers(node: dict[str, Any]) -> list[str]:
    out = [str((node.get("logger") or {}).get("url") or "")]
    for child in node.get("children") or []:
        out += _graph_loggers(child)
    return [u for u in out if u]


def workload_pods(target: str, doc: dict[str, Any]) -> list[Pod]:
    """The pods a rendered resource runs: labels, the endpoints they call, their ports."""
    kind, md, spec = doc.get("kind"), doc.get("metadata") or {}, doc.get("spec") or {}
    ns = str(md.get("namespace") or "default")
    name = f"{kind}/{md.get('name')}"
    if kind == "SeldonDeployment":
        pods = []
        for p in spec.get("predictors") or []:
            labels = {str(k): str(v) for k, v in (p.get("labels") or {}).items()}
            labels["seldon-deployment-id"] = str(md.get("name"))  # set by Seldon's operator
            containers = [
                c
                for cs in p.get("componentSpecs") or []
                for c in (cs.get("spec") or {}).get("containers") or []
            ]
            eps = [e for c in containers for e in _container_endpoints(c)]
            eps += [
                ep
                for u in _graph_loggers(p.get("graph") or {})
                if (ep := parse_endpoint(u, "graph logger")) is not None
            ]
            pods.append(
                Pod(
                    target, f"{name} predictor {p.get('name')}", ns, labels, eps, _ports(containers)
                )
            )
        return pods
    if kind not in WORKLOAD_KINDS:
        return []
    if kind == "Pod":
        tmpl = {"metadata": md, "spec": spec}
    elif kind == "CronJob":
        tmpl = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    else:
        tmpl = spec.get("template") or {}
    pod_spec = tmpl.get("spec") or {}
    containers = (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or [])
    labels = {str(k): str(v) for k, v in ((tmpl.get("metadata") or {}).get("labels") or {}).items()}
    eps = [e for c in containers for e in _container_endpoints(c)]
    return [Pod(target, name, ns, labels, eps, _ports(containers))]


def _generated_dirs(generators: list[dict[str, Any]]) -> list[str]:
    """The directory patterns a git generator makes Applications of: its `directories`, or the
    folders of its `files` (the release file of each overlay), through merge/matrix nesting."""
    out: list[str] = []
    for g in generators:
        git = g.get("git") or {}
        for d in git.get("directories") or []:
            if d.get("path") and not d.get("exclude"):
                out.append(str(d["path"]))
        for f in git.get("files") or []:
            if f.get("path") and not f.get("exclude"):
                out.append(posixpath.dirname(str(f["path"])))
        for nested in ("merge", "matrix"):
            out += _generated_dirs((g.get(nested) or {}).get("generators") or [])
    return out


def namespace_labels(targets: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, str]]:
    """Every namespace the rendered set uses -> the labels it will carry in the cluster."""
    managed: list[tuple[str, dict[str, str]]] = []
    for docs in targets.values():
        for d in docs:
            if d.get("kind") != "ApplicationSet":
                continue
            spec = d.get("spec") or {}
            labels = (((spec.get("template") or {}).get("spec") or {}).get("syncPolicy") or {}).get(
                "managedNamespaceMetadata", {}
            ).get("labels") or {}
            for pattern in _generated_dirs(spec.get("generators") or []):
                managed.append((pattern, {k: str(v) for k, v in labels.items()}))
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for target, docs in targets.items():
        extra: dict[str, str] = {}
        for pattern, labels in managed:
            if fnmatch.fnmatch(target, pattern):
                extra |= labels
        for d in docs:
            md = d.get("metadata") or {}
            if d.get("kind") == "Namespace":
                ns = str(md.get("name"))
                out[ns] |= {str(k): str(v) for k, v in (md.get("labels") or {}).items()}
            elif md.get("namespace"):
                out[str(md["namespace"])] |= extra
    for ns in list(out):
        out[ns][NS_NAME_LABEL] = ns
    return out


# --- the check -------------------------------------------------------------------------------


@dataclass
class _Cluster:
    pods: list[Pod]
    policies: list[Policy]
    services: dict[tuple[str, str], dict[str, Any]]
    ns_labels: dict[str, dict[str, str]]

    @classmethod
    def of(cls, targets: dict[str, list[dict[str, Any]]]) -> _Cluster:
        pods: list[Pod] = []
        policies: list[Policy] = []
        services: dict[tuple[str, str], dict[str, Any]] = {}
        for target, docs in targets.items():
            for d in docs:
                md = d.get("metadata") or {}
                ns = str(md.get("namespace") or "default")
                if d.get("kind") == "NetworkPolicy":
                    policies.append(Policy(str(md.get("name")), ns, d.get("spec") or {}))
                elif d.get("kind") == "Service":
                    services[(ns, str(md.get("name")))] = d
                else:
                    pods += workload_pods(target, d)
        return cls(pods, policies, services, namespace_labels(targets))

    def labels_of(self, ns: str) -> dict[str, str]:
        return self.ns_labels.get(ns) or {NS_NAME_LABEL: ns}

    def __post_init__(self) -> None:
        # A policy selects pods of its own namespace only: indexed so that many overlays
        # cost linear time, not overlays x policies.
        self.by_ns: dict[str, list[Policy]] = defaultdict(list)
        for p in self.policies:
            self.by_ns[p.namespace].append(p)
        self.pods_by_ns: dict[str, list[Pod]] = defaultdict(list)
        for pod in self.pods:
            self.pods_by_ns[pod.namespace].append(pod)


def _cluster_service(host: str, caller_ns: str, known_ns: set[str]) -> tuple[str, str] | None:
    """(service, namespace) when `host` names a cluster Service, else None (outside)."""
    for suffix in (".svc.cluster.local", ".svc"):
        if host.endswith(suffix):
            parts = host.removesuffix(suffix).split(".")
            return (parts[0], parts[1]) if len(parts) == 2 else None
    parts = host.split(".")
    if len(parts) == 1:
        return parts[0], caller_ns
    if len(parts) == 2 and parts[1] in known_ns:
        return parts[0], parts[1]
    return None


def check_reachability(targets: dict[str, list[dict[str, Any]]]) -> list[Unreachable]:
    """Every endpoint every rendered workload names, checked on both sides and for DNS."""
    cl = _Cluster.of(targets)
    ns_labels = {ns: cl.labels_of(ns) for ns in cl.ns_labels}
    known_ns = set(ns_labels) | {ns for ns, _ in cl.services}
    out: list[Unreachable] = []
    for pod in cl.pods:
        dns_reported = False
        for ep in pod.endpoints:

            def problem(side: str, msg: str, pod: Pod = pod, ep: Endpoint = ep) -> None:
                out.append(
                    Unreachable(
                        target=pod.target,
                        workload=pod.workload,
                        endpoint=ep.text,
                        source=ep.source,
                        side=side,
                        message=f"{pod.workload} ({pod.namespace}) -> {ep.text} "
                        f"[{ep.source}]: {msg}",
                    )
                )

            if not _is_ip(ep.host) and not dns_reported:
                dns_reported = not _dns_ok(cl, pod, ns_labels, problem)
            svc = None if _is_ip(ep.host) else _cluster_service(ep.host, pod.namespace, known_ns)
            if svc is None:
                dest = Dest(
                    None, None, ep.port, external=True, ip=ep.host if _is_ip(ep.host) else None
                )
                ok, names = _admitting(
                    cl.by_ns[pod.namespace], "Egress", pod.namespace, pod.labels, dest, ns_labels
                )
                if not ok:
                    problem(
                        "egress",
                        f"no egress rule (ipBlock) to outside the cluster on TCP {ep.port} in "
                        f"the NetworkPolicies selecting it ({', '.join(names)})",
                    )
                continue
            name, ns = svc
            service = cl.services.get((ns, name))
            if service is None:
                dest = Dest(ns, None, ep.port)
                ok, names = _admitting(
                    cl.by_ns[pod.namespace], "Egress", pod.namespace, pod.labels, dest, ns_labels
                )
                if not ok:
                    problem(
                        "egress",
                        f"no egress rule to namespace {ns} (Service {name}, not in the rendered "
                        f"manifests) on TCP {ep.port} in the NetworkPolicies selecting it "
                        f"({', '.join(names)})",
                    )
                continue
            _check_service(cl, pod, ep, service, ns, ns_labels, problem)
    return out


def _dns_ok(cl: _Cluster, pod: Pod, ns_labels: dict[str, dict[str, str]], problem: Any) -> bool:
    dns_labels = {**ns_labels.get(DNS_NAMESPACE, {}), NS_NAME_LABEL: DNS_NAMESPACE}
    labels = {**ns_labels, DNS_NAMESPACE: dns_labels}
    missing = []
    for proto in ("UDP", "TCP"):
        dest = Dest(DNS_NAMESPACE, DNS_POD_LABELS, 53, protocol=proto)
        ok, names = _admitting(
            cl.by_ns[pod.namespace], "Egress", pod.namespace, pod.labels, dest, labels
        )
        if not ok:
            missing.append((proto, names))
    if missing:
        protos = " and ".join(f"53/{p}" for p, _ in missing)
        problem(
            "dns",
            f"no egress rule to kube-dns ({DNS_NAMESPACE}, k8s-app=kube-dns) on {protos} in the "
            f"NetworkPolicies selecting it ({', '.join(missing[0][1])}): the name cannot be "
            "resolved",
        )
    return not missing


def _check_service(
    cl: _Cluster,
    pod: Pod,
    ep: Endpoint,
    service: dict[str, Any],
    ns: str,
    ns_labels: dict[str, dict[str, str]],
    problem: Any,
) -> None:
    sname = f"Service {ns}/{(service.get('metadata') or {}).get('name')}"
    spec = service.get("spec") or {}
    sport = next((p for p in spec.get("ports") or [] if int(p.get("port", -1)) == ep.port), None)
    if sport is None:
        have = ", ".join(str(p.get("port")) for p in spec.get("ports") or [])
        problem("service", f"{sname} has no port {ep.port} (it has {have or 'none'})")
        return
    selector = spec.get("selector") or {}
    callees = [
        p
        for p in cl.pods_by_ns[ns]
        if selector and selector_matches({"matchLabels": selector}, p.labels)
    ]
    if not callees:
        problem("service", f"{sname} selects no pod in the rendered manifests ({selector})")
        return
    target_port = sport.get("targetPort", sport.get("port"))
    for callee in callees:
        if isinstance(target_port, int) or str(target_port).isdigit():
            number = int(target_port)
            pname = next((n for n, v in callee.ports.items() if v == number), None)
        else:
            pname = str(target_port)
            if pname not in callee.ports:
                problem("service", f"{sname} targets port {pname!r}, which {callee.workload} lacks")
                continue
            number = callee.ports[pname]
        dest = Dest(ns, callee.labels, number, port_name=pname)
        ok, names = _admitting(
            cl.by_ns[pod.namespace], "Egress", pod.namespace, pod.labels, dest, ns_labels
        )
        if not ok:
            problem(
                "egress",
                f"no egress rule to {callee.workload} ({ns}) on TCP {number} in the "
                f"NetworkPolicies selecting it ({', '.join(names)})",
            )
        src = Dest(pod.namespace, pod.labels, number, port_name=pname)
        ok, names = _admitting(cl.by_ns[ns], "Ingress", ns, callee.labels, src, ns_labels)
        if not ok:
            problem(
                "ingress",
                f"no ingress rule of {callee.workload} ({ns}) admits it on TCP {number}: "
                f"NetworkPolicies selecting the callee: {', '.join(names)}",
            )
