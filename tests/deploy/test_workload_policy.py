"""Policy checks on every rendered workload: probes, resources, security context, images,
PodDisruptionBudgets, graceful termination, and references that resolve."""

from __future__ import annotations

import re

import kube_manifests as km
import pytest

CASES = [pytest.param(case, id=case.name) for case in km.RENDER_CASES]


def _each_container(docs: list[km.Doc]) -> list[tuple[str, km.Doc, km.Doc]]:
    """(label, pod spec, container) for every container of every workload."""
    out = []
    for workload in km.workloads(docs):
        spec = km.pod_template(workload)["spec"]
        for kind, container in km.all_containers(spec):
            out.append((f"{km.doc_id(workload)} {kind} {container['name']}", spec, container))
    return out


@pytest.mark.parametrize("case", CASES)
def test_every_container_has_readiness_and_liveness_probes(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    """Init containers included: only sidecars (restartPolicy Always) may carry probes, so a
    plain init container without probes fails here on purpose."""
    missing = [
        f"{label}: {probe}"
        for label, _, c in _each_container(rendered(case.name))
        for probe in ("readinessProbe", "livenessProbe")
        if probe not in c
    ]
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("case", CASES)
def test_every_container_has_cpu_and_memory_requests_and_limits(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    missing = [
        f"{label}: {bound}.{resource}"
        for label, _, c in _each_container(rendered(case.name))
        for bound in ("requests", "limits")
        for resource in ("cpu", "memory")
        if resource not in (c.get("resources") or {}).get(bound, {})
    ]
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("case", CASES)
def test_every_container_runs_restricted(case: km.RenderCase, rendered: km.RenderLookup) -> None:
    """Non-root, no privilege escalation, all capabilities dropped, read-only root filesystem,
    RuntimeDefault seccomp: the "restricted" Pod Security Standard, and a bit more."""
    problems = []
    for label, spec, c in _each_container(rendered(case.name)):
        pod_sc = spec.get("securityContext") or {}
        sc = c.get("securityContext") or {}
        if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
            problems.append(f"{label}: runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            problems.append(f"{label}: runAsUser is 0")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{label}: allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            problems.append(f"{label}: privileged")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            problems.append(f"{label}: capabilities.drop lacks ALL")
        if (sc.get("capabilities") or {}).get("add"):
            problems.append(f"{label}: adds capabilities")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{label}: readOnlyRootFilesystem is not true")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{label}: seccompProfile is {seccomp}")
    for workload in km.workloads(rendered(case.name)):
        spec = km.pod_template(workload)["spec"]
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(flag):
                problems.append(f"{km.doc_id(workload)}: {flag}")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(
                f"{km.doc_id(workload)}: mounts a service account token it does not need"
            )
    assert not problems, "\n".join(problems)


IMAGE = re.compile(
    r"^(?P<name>[^@]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@sha256:(?P<digest>[0-9a-f]{64}))?$"
)


def _image_problem(image: str) -> str | None:
    match = IMAGE.match(image)
    if match is None:
        return "unparseable"
    if match["digest"]:
        return None
    if not match["tag"]:
        return "untagged"
    if match["tag"] == "latest":
        return "tagged latest"
    return None


def test_image_check_catches_latest_and_untagged() -> None:
    assert _image_problem("mongo:latest") == "tagged latest"
    assert _image_problem("mongo") == "untagged"
    assert _image_problem("localhost:5000/mongo") == "untagged"
    assert _image_problem("localhost:5000/mongo:7.0.14") is None
    assert _image_problem("mongo@sha256:" + "a" * 64) is None


@pytest.mark.parametrize("case", CASES)
def test_no_image_is_latest_or_untagged(case: km.RenderCase, rendered: km.RenderLookup) -> None:
    problems = [
        f"{label}: {c['image']} is {problem}"
        for label, _, c in _each_container(rendered(case.name))
        if (problem := _image_problem(c["image"]))
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case", CASES)
def test_every_deployment_has_a_pod_disruption_budget(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    docs = rendered(case.name)
    pdbs = km.of_kind(docs, "PodDisruptionBudget")
    uncovered = []
    for deployment in km.of_kind(docs, "Deployment"):
        labels = km.pod_template(deployment)["metadata"]["labels"]
        matching = [p for p in pdbs if km.selector_matches(p["spec"]["selector"], labels)]
        if not matching:
            uncovered.append(km.doc_id(deployment))
        for pdb in matching:
            # minAvailable would block every node drain of a single-replica install.
            assert "maxUnavailable" in pdb["spec"], f"{km.doc_id(pdb)} should use maxUnavailable"
    assert not uncovered, f"Deployments without a PodDisruptionBudget: {uncovered}"


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("service", list(km.SERVICES))
def test_services_use_native_grpc_health_probes(
    service: str, case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    """Startup and readiness ask grpc.health.v1 on the service's GRPC_PORT; liveness too,
    except the gateway's, which asks the REST face's dependency-free GET /healthz."""
    _, grpc_port, http_port = km.SERVICES[service]
    container = km.main_container(km.app_deployment(rendered(case.name), service))
    assert km.env_map(container)["GRPC_PORT"]["value"] == str(grpc_port)
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe].get("grpc", {}).get("port") == grpc_port, f"{service} {probe}"
    liveness = container["livenessProbe"]
    if http_port is None:
        assert liveness.get("grpc", {}).get("port") == grpc_port
    else:
        assert km.env_map(container)["HTTP_PORT"]["value"] == str(http_port)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert liveness["httpGet"]["path"] == "/healthz"
        assert ports.get(liveness["httpGet"]["port"], liveness["httpGet"]["port"]) == http_port
    declared = {p["containerPort"] for p in container["ports"]}
    assert grpc_port in declared and (http_port is None or http_port in declared)


@pytest.mark.parametrize("case", CASES)
def test_termination_grace_matches_the_drain_time(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    """30 s for auth, gateway and notifier (≈20 s drain); 300 s for a converter finishing a job."""
    expected = {"auth": 30, "gateway": 30, "notifier": 30, "converter": 300}
    docs = rendered(case.name)
    actual = {
        s: km.pod_template(km.app_deployment(docs, s))["spec"].get("terminationGracePeriodSeconds")
        for s in expected
    }
    assert actual == expected
    for service in ("auth", "gateway"):
        container = km.main_container(km.app_deployment(docs, service))
        pre_stop = (
            (container.get("lifecycle") or {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        )
        assert 0 < pre_stop + 20 <= expected[service], (
            f"{service}: preStop plus drain exceed the grace period"
        )
    # The converter hands its job back after DRAIN_TIMEOUT_S: that must happen before SIGKILL.
    drain = float(km.config_data(docs)["DRAIN_TIMEOUT_S"])
    assert drain + 30 <= expected["converter"], "DRAIN_TIMEOUT_S leaves no margin before SIGKILL"


@pytest.mark.parametrize("case", CASES)
def test_services_write_only_to_a_tmp_emptydir(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    """The images set HOME and TMPDIR to /tmp; the root filesystem is read-only."""
    docs = rendered(case.name)
    for service in km.SERVICES:
        deployment = km.app_deployment(docs, service)
        spec = km.pod_template(deployment)["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        mounts = {
            m["mountPath"]: m["name"]
            for m in km.main_container(deployment).get("volumeMounts") or []
        }
        assert "/tmp" in mounts, f"{service}: no volume at /tmp"
        assert "emptyDir" in volumes[mounts["/tmp"]], f"{service}: /tmp is not an emptyDir"
        assert spec["securityContext"]["runAsUser"] == 10001


@pytest.mark.parametrize("case", CASES)
def test_every_deployment_runs_as_its_own_service_account(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    docs = rendered(case.name)
    accounts = {sa["metadata"]["name"] for sa in km.of_kind(docs, "ServiceAccount")}
    for service in km.SERVICES:
        name = km.pod_template(km.app_deployment(docs, service))["spec"].get("serviceAccountName")
        assert name == service and name in accounts


@pytest.mark.parametrize("case", CASES)
def test_every_service_selects_a_workload_and_its_named_ports(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    docs = rendered(case.name)
    problems = []
    for svc in km.of_kind(docs, "Service"):
        targets = [
            w
            for w in km.workloads(docs)
            if km.selector_matches(
                {"matchLabels": svc["spec"].get("selector") or {}},
                km.pod_template(w)["metadata"]["labels"],
            )
        ]
        if not targets:
            problems.append(f"{km.doc_id(svc)} selects no workload")
            continue
        for target in targets:
            named_ports = {
                p["name"]: p["containerPort"]
                for _, c in km.all_containers(km.pod_template(target)["spec"])
                for p in c.get("ports") or []
                if "name" in p
            }
            numbers = set(named_ports.values())
            for port in svc["spec"]["ports"]:
                tp = port.get("targetPort", port["port"])
                if (isinstance(tp, str) and tp not in named_ports) or (
                    isinstance(tp, int) and tp not in numbers
                ):
                    problems.append(
                        f"{km.doc_id(svc)} {port['name']}: {km.doc_id(target)} has no port {tp}"
                    )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case", CASES)
def test_config_and_secret_references_resolve(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    """Every configMapKeyRef names a key of a ConfigMap in the render; in overlays, every
    secretKeyRef (and KEDA secretTargetRef) names a key of a generated Secret too."""
    docs = rendered(case.name)
    data: dict[tuple[str, str], set[str]] = {}
    for kind in ("ConfigMap", "Secret"):
        for obj in km.of_kind(docs, kind):
            data[(kind, obj["metadata"]["name"])] = set(obj.get("data") or {}) | set(
                obj.get("stringData") or {}
            )
    refs: list[tuple[str, str, str, str, bool]] = []
    for workload in km.workloads(docs):
        for _, c in km.all_containers(km.pod_template(workload)["spec"]):
            for env in c.get("env") or []:
                source = env.get("valueFrom") or {}
                for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    if field in source:
                        ref = source[field]
                        where = f"{km.doc_id(workload)} {env['name']}"
                        refs.append(
                            (where, kind, ref["name"], ref["key"], bool(ref.get("optional")))
                        )
    for auth in km.of_kind(docs, "TriggerAuthentication"):
        for ref in auth["spec"].get("secretTargetRef") or []:
            refs.append((km.doc_id(auth), "Secret", ref["name"], ref["key"], False))
    problems = []
    for where, kind, name, key, optional in refs:
        if (kind, name) not in data:
            if kind == "ConfigMap" or case.complete:
                problems.append(f"{where}: {kind}/{name} is not in the render")
        elif key not in data[(kind, name)] and not optional:
            problems.append(f"{where}: {kind}/{name} has no key {key}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case", CASES)
def test_statefulsets_keep_their_data_on_persistent_volumes(
    case: km.RenderCase, rendered: km.RenderLookup
) -> None:
    for sts in km.of_kind(rendered(case.name), "StatefulSet"):
        claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates") or []}
        assert claims, f"{km.doc_id(sts)} has no volumeClaimTemplates"
        mounted = {
            m["name"]
            for _, c in km.all_containers(km.pod_template(sts)["spec"])
            for m in c.get("volumeMounts") or []
        }
        assert claims <= mounted, f"{km.doc_id(sts)} does not mount {claims - mounted}"
