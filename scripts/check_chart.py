#!/usr/bin/env python3
"""Checks the Helm chart in helm/identsphere offline: no cluster, no helm binary, no network.

Run through scripts/check-chart.sh, which prepares the virtualenv (helm-python-sdk, kubernetes-validate,
checkov, promql-parser). For each value set (the chart's defaults plus the values it requires, and
helm/values-production.yaml) it

  1. lints the chart strictly (helm-python-sdk, Helm's own linter) and fails on any warning or error;
  2. renders it (Helm's engine, which also validates values.schema.json) and parses every manifest;
  3. validates every manifest with kubernetes-validate in strict mode against the chart's oldest supported
     Kubernetes version and the newest one kubernetes-validate ships; the Prometheus Operator CRDs, which have no
     built-in schema, against a structural schema of the fields the chart uses;
  4. checks what the chart promises: probes, security context, drain timing, the Postgres + Redis settings, hook
     order of the migration Job, and that selectors, ports and names line up between objects;
  5. parses every alert and dashboard query as PromQL and checks its metric names, labels and label values
     against the metrics the server exports;
  6. runs checkov on the rendered manifests and on the Dockerfile: no failed check, and every skip carries a
     justification.

It also makes sure the chart refuses values that cannot work (no publicBaseUrl, no database, a termination grace
period shorter than the drain), and cross-checks the variables and metrics the chart relies on against the
server's sources: missing ones fail the check (IDENTSPHERE_CHART_REQUIRE_SERVER=0 makes them warnings, for a
chart change that is ahead of the server).

Exit status 0 when everything passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import jsonschema
import promql_parser
import yaml
from kubernetes_validate import utils as kv

import helm_python as helm

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "identsphere"
PRODUCTION_VALUES = ROOT / "helm" / "values-production.yaml"
RELEASE = "identsphere"
NAMESPACE = "identsphere"
# The chart's kubeVersion floor and the newest Kubernetes kubernetes-validate ships schemas for.
KUBE_VERSIONS = ("1.27.0", kv.latest_version())

# What the chart needs on top of its defaults: the public base URL, and the Postgres + Redis secrets.
REQUIRED_VALUES: dict[str, Any] = {
    "publicBaseUrl": "https://auth.example.com",
    "database": {"url": "postgres://identsphere:secret@postgres.db.svc:5432/identsphere"},
    "redis": {"url": "redis://redis.cache.svc:6379"},
    "keyEncryptionKey": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
}

# Values the chart must refuse, with a fragment of the message it must refuse them with.
MUST_FAIL: list[tuple[str, dict[str, Any], str]] = [
    ("no publicBaseUrl", {}, "publicBaseUrl"),
    ("publicBaseUrl not http(s)", {**REQUIRED_VALUES, "publicBaseUrl": "auth.example.com"}, "publicBaseUrl"),
    ("no database URL (embedded store)", {"publicBaseUrl": "https://auth.example.com"}, "database.url is required"),
    ("redis URL missing", {**REQUIRED_VALUES, "redis": {"url": ""}}, "redis.url is required"),
    ("key-encryption key not 32 bytes", {**REQUIRED_VALUES, "keyEncryptionKey": "c2hvcnQ="}, "keyEncryptionKey"),
    ("database URL not postgres://", {**REQUIRED_VALUES, "database": {"url": "mysql://db/x"}}, "database/url"),
    ("unknown value (typo)", {**REQUIRED_VALUES, "replicas": 3}, "replicas"),
    (
        "grace period not above the drain",
        {**REQUIRED_VALUES, "shutdown": {"timeoutSeconds": 30, "terminationGracePeriodSeconds": 30}},
        "terminationGracePeriodSeconds must be larger",
    ),
    ("data dir in extraConfig", {**REQUIRED_VALUES, "extraConfig": {"IDENTSPHERE_DATA_DIR": "/data"}}, "embedded"),
]

# The metrics the server exports (the chart's alerts and dashboard may use nothing else): labels, and for
# bounded labels their values (None = any value).
HISTOGRAM = "histogram"
METRICS: dict[str, dict[str, Any]] = {
    "identsphere_http_requests_total": {
        "labels": {"route": None, "method": None, "status": {"1xx", "2xx", "3xx", "4xx", "5xx"}}
    },
    "identsphere_http_request_duration_seconds": {
        "type": HISTOGRAM,
        "labels": {"route": None, "method": None, "status": {"1xx", "2xx", "3xx", "4xx", "5xx"}},
    },
    "identsphere_sessions_refreshes_total": {
        "labels": {
            "outcome": {"rotated", "grace_replay", "reused", "revoked", "expired", "disabled", "unknown_family", "error"}
        }
    },
    "identsphere_auth_signins_total": {"labels": {"method": None, "result": None}},
    "identsphere_auth_registrations_total": {"labels": {"result": None}},
    "identsphere_password_hash_seconds": {"type": HISTOGRAM, "labels": {"operation": {"hash", "verify"}}},
    "identsphere_password_queue_depth": {"labels": {}},
    "identsphere_actors_live": {"labels": {}},
    "identsphere_actors_pending_operations": {"labels": {}},
    "identsphere_store_errors_total": {
        "labels": {"store": {"postgres", "redis", "embedded"}, "kind": {"unavailable", "conflict", "internal"}}
    },
    "identsphere_store_pool_connections": {
        "labels": {"store": {"postgres", "redis", "embedded"}, "state": {"size", "available"}}
    },
    "identsphere_tokens_verifications_total": {
        "labels": {"token": {"access", "refresh"}, "result": {"valid", "invalid", "expired", "revoked", "error"}}
    },
    "identsphere_session_views_total": {"labels": {"result": {"hit", "miss", "changed", "expired"}}},
    "identsphere_build_info": {"labels": {"version": None}},
    # Prometheus' own series for each target.
    "up": {"labels": {}, "external": True},
}
# Labels Prometheus (and the Prometheus Operator) attach to every scraped series.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "container", "endpoint"}

# The dashboard must show at least these metrics.
DASHBOARD_METRICS = {name for name, spec in METRICS.items() if not spec.get("external")}

# The alerts the chart must ship, with the metric each one watches.
ALERTS = {
    "IdentSphereHighErrorRate": "identsphere_http_requests_total",
    "IdentSphereHighLatencyP99": "identsphere_http_request_duration_seconds_bucket",
    "IdentSphereRefreshTokenReuseSpike": "identsphere_sessions_refreshes_total",
    "IdentSphereStoreErrors": "identsphere_store_errors_total",
}

# Secrets never go to the ConfigMap; these settings must be there, as the server parses them.
SECRET_VARS = ("IDENTSPHERE_DATABASE_URL", "IDENTSPHERE_REDIS_URL", "IDENTSPHERE_KEY_ENCRYPTION_KEY")
WHOLE_NUMBER_VARS = (
    "IDENTSPHERE_ACCESS_TOKEN_TTL",
    "IDENTSPHERE_REFRESH_TOKEN_TTL",
    "IDENTSPHERE_REFRESH_REUSE_GRACE",
    "IDENTSPHERE_ARGON2_MEMORY_KIB",
    "IDENTSPHERE_ARGON2_ITERATIONS",
    "IDENTSPHERE_ARGON2_PARALLELISM",
    "IDENTSPHERE_DATABASE_POOL_SIZE",
    "IDENTSPHERE_PASSWORD_HASH_CONCURRENCY",
    "IDENTSPHERE_WORKERS",
    "IDENTSPHERE_ACTOR_ARBITERS",
    "IDENTSPHERE_ACTOR_IDLE_TIMEOUT",
    "IDENTSPHERE_SHUTDOWN_DELAY",
    "IDENTSPHERE_SHUTDOWN_TIMEOUT",
    "IDENTSPHERE_KEY_ROTATION_INTERVAL",
)

# Structural schemas of the Prometheus Operator objects, limited to the fields the chart sets (strict: unknown
# fields are errors, as in kubernetes-validate's strict mode). Field names and types follow monitoring.coreos.com/v1.
_DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
_STRMAP = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": _STRMAP,
        "annotations": _STRMAP,
    },
    "additionalProperties": False,
}
CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "ServiceMonitor"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["selector", "endpoints"],
                "additionalProperties": False,
                "properties": {
                    "jobLabel": {"type": "string"},
                    "selector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"matchLabels": _STRMAP, "matchExpressions": {"type": "array"}},
                    },
                    "namespaceSelector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}},
                    },
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["port"],
                            "additionalProperties": False,
                            "properties": {
                                "port": {"type": "string", "minLength": 1},
                                "path": {"type": "string", "pattern": "^/"},
                                "scheme": {"enum": ["http", "https"]},
                                "interval": _DURATION,
                                "scrapeTimeout": _DURATION,
                                "honorLabels": {"type": "boolean"},
                            },
                        },
                    },
                },
            },
        },
    },
    ("monitoring.coreos.com/v1", "PrometheusRule"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "PrometheusRule"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["groups"],
                "additionalProperties": False,
                "properties": {
                    "groups": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["name", "rules"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string", "minLength": 1},
                                "interval": _DURATION,
                                "rules": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "type": "object",
                                        "required": ["expr"],
                                        "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                        "additionalProperties": False,
                                        "properties": {
                                            "alert": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                                            "record": {"type": "string"},
                                            "expr": {"type": "string", "minLength": 1},
                                            "for": _DURATION,
                                            "keep_firing_for": _DURATION,
                                            "labels": _STRMAP,
                                            "annotations": _STRMAP,
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            },
        },
    },
}


class Report:
    """Collects failures, warnings and counts for the summary."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.warnings: list[str] = []
        self.lines: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.failures.append(f"{where}: {message}")
        print(f"  FAIL {where}: {message}")

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(f"{where}: {message}")
        print(f"  WARN {where}: {message}")

    def check(self, ok: bool, where: str, message: str) -> bool:
        if not ok:
            self.fail(where, message)
        return ok

    def summary(self, line: str) -> None:
        self.lines.append(line)


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# ---------------------------------------------------------------------------------------------------- lint, render


def lint(report: Report, case: str, values: dict[str, Any]) -> None:
    result = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSIONS[-1]}")
    for message in result.get("messages") or []:
        # 1 = info ("icon is recommended"); warnings (2) and errors (3) fail, as strict lint does.
        if message.get("severity", 0) >= 2:
            report.fail(f"{case}: helm lint {message.get('path')}", str(message.get("error")).strip())
    for error in result.get("errors") or []:
        report.fail(f"{case}: helm lint", str(error).strip())


def render(chart: helm.Chart, values: dict[str, Any]) -> dict[str, str]:
    return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def manifests_of(report: Report, case: str, rendered: dict[str, str], outdir: Path) -> list[dict[str, Any]]:
    """Parses the rendered templates, writes each to outdir, and returns every object."""
    outdir.mkdir(parents=True, exist_ok=True)
    objects: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    notes = False
    for path, text in sorted(rendered.items()):
        name = Path(path).name
        if name == "NOTES.txt":
            notes = bool(text.strip())
            continue
        if not text.strip():
            continue
        try:
            docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
        except yaml.YAMLError as err:
            report.fail(f"{case}: {path}", f"not YAML: {err}")
            continue
        (outdir / name).write_text(text)
        for doc in docs:
            if not isinstance(doc, dict) or not {"apiVersion", "kind", "metadata"} <= doc.keys():
                report.fail(f"{case}: {path}", "a document without apiVersion, kind and metadata")
                continue
            key = (doc["kind"], doc["metadata"].get("name", ""))
            report.check(key not in seen, f"{case}: {path}", f"{key[0]} {key[1]} is rendered twice")
            seen.add(key)
            doc["__template__"] = path
            objects.append(doc)
    report.check(notes, f"{case}: NOTES.txt", "renders empty")
    return objects


def clean(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "__template__"}


# ------------------------------------------------------------------------------------------------------ schemas


def validate_schemas(report: Report, case: str, objects: list[dict[str, Any]]) -> int:
    checked = 0
    for doc in objects:
        kind, api = doc["kind"], doc["apiVersion"]
        where = f"{case}: {kind} {doc['metadata'].get('name')}"
        crd = CRD_SCHEMAS.get((api, kind))
        if crd is not None:
            errors = sorted(jsonschema.Draft7Validator(crd).iter_errors(clean(doc)), key=lambda e: list(e.path))
            for err in errors:
                report.fail(where, f"structural schema: {'.'.join(map(str, err.path))}: {err.message}")
            checked += 1
            continue
        for version in KUBE_VERSIONS:
            try:
                kv.validate(clean(doc), version, strict=True)
            except kv.ValidationError as err:
                report.fail(where, f"kubernetes {version} (strict): {'.'.join(map(str, err.path))}: {err.message}")
            except kv.SchemaNotFoundError as err:
                # kubernetes-validate's CLI only warns here; an unknown kind or apiVersion is an error for us.
                report.fail(where, err.message)
            checked += 1
    return checked


def negative_cases(report: Report, chart: helm.Chart) -> int:
    for name, values, fragment in MUST_FAIL:
        try:
            render(chart, values)
        except helm.HelmError as err:
            report.check(fragment in str(err), f"must refuse '{name}'", f"refused, but not for the expected reason: {err}")
        else:
            report.fail(f"must refuse '{name}'", "rendered without error")
    return len(MUST_FAIL)


# ------------------------------------------------------------------------------------------------ chart promises


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def env_value(container: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((e for e in container.get("env") or [] if e.get("name") == name), None)


def check_pod(report: Report, where: str, pod: dict[str, Any]) -> None:
    spec = pod["spec"]
    report.check(spec.get("automountServiceAccountToken") is False, where, "automountServiceAccountToken must be false")
    psc = spec.get("securityContext") or {}
    for key, want in (("runAsNonRoot", True), ("runAsUser", 65532), ("runAsGroup", 65532)):
        report.check(psc.get(key) == want, where, f"pod securityContext.{key} must be {want}")
    report.check((psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", where, "pod seccompProfile RuntimeDefault")
    for c in spec["containers"]:
        csc = c.get("securityContext") or {}
        cw = f"{where} container {c['name']}"
        report.check(csc.get("readOnlyRootFilesystem") is True, cw, "readOnlyRootFilesystem must be true")
        report.check(csc.get("allowPrivilegeEscalation") is False, cw, "allowPrivilegeEscalation must be false")
        report.check((csc.get("capabilities") or {}).get("drop") == ["ALL"], cw, "capabilities must drop ALL")
        report.check(csc.get("runAsNonRoot") is True, cw, "runAsNonRoot must be true")
        report.check((csc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", cw, "seccompProfile RuntimeDefault")
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                report.check(r in (res.get(part) or {}), cw, f"resources.{part}.{r} must be set")
        report.check(bool(c.get("imagePullPolicy")), cw, "imagePullPolicy must be set")
        image = c.get("image", "")
        by_digest = re.fullmatch(r"[^@\s]+@sha256:[a-f0-9]{64}", image)
        by_tag = re.fullmatch(r"[^@\s]+:[\w][\w.-]{0,127}", image) and ":" in image.rsplit("/", 1)[-1]
        report.check(bool(by_digest or by_tag), cw, f"image {image!r} is neither repository:tag nor repository@sha256:digest")


def check_ca_files(report: Report, where: str, values: dict[str, Any], spec: dict[str, Any], container: dict[str, Any],
                   stores: tuple[str, ...]) -> None:
    """Each store whose ca.configMap is set: its IDENTSPHERE_<STORE>_CA_FILE names that ConfigMap's key, mounted."""
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
    for store in stores:
        ca = (values.get(store) or {}).get("ca") or {}
        var = f"IDENTSPHERE_{store.upper()}_CA_FILE"
        path = (env_value(container, var) or {}).get("value")
        if not ca.get("configMap"):
            report.check(path is None, where, f"{var} set without {store}.ca.configMap")
            continue
        directory, _, file = (path or "").rpartition("/")
        volume = volumes.get(mounts.get(directory, ""), {}).get("configMap") or {}
        report.check(volume.get("name") == ca["configMap"] and file in [i["path"] for i in volume.get("items") or []],
                     where, f"{var}={path!r} is not the key of the mounted ConfigMap {ca['configMap']!r}")


def check_promises(report: Report, case: str, values: dict[str, Any], objects: list[dict[str, Any]]) -> None:
    w = lambda what: f"{case}: {what}"  # noqa: E731
    full = RELEASE
    deployments = find(objects, "Deployment")
    if not report.check(len(deployments) == 1, w("Deployment"), f"expected one, found {len(deployments)}"):
        return
    dep = deployments[0]
    pod = dep["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    report.check(selects(dep["spec"]["selector"]["matchLabels"], pod_labels), w("Deployment"), "selector does not select its pods")
    check_pod(report, w("Deployment"), pod)
    spec = pod["spec"]
    containers = {c["name"]: c for c in spec["containers"]}
    server = containers.get("identsphere")
    if not report.check(server is not None, w("Deployment"), "no container named identsphere"):
        return
    ports = {p["name"]: p["containerPort"] for p in server.get("ports") or []}
    report.check(ports.get("http") == 8080, w("Deployment"), "the http port must be 8080")
    separate = bool(values.get("metrics", {}).get("separatePort"))
    report.check(("metrics" in ports) == separate, w("Deployment"), "a metrics port exactly when metrics.separatePort")
    if separate:
        report.check(ports.get("metrics") == 9090 or ports.get("metrics") == values["metrics"].get("port"), w("Deployment"), "metrics port")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        get = (server.get(probe) or {}).get("httpGet") or {}
        report.check(get.get("path") == path and get.get("port") in ("http", 8080), w(f"Deployment {probe}"), f"must GET {path} on the http port")
    readiness_timeout = (server.get("readinessProbe") or {}).get("timeoutSeconds", 1)
    report.check(readiness_timeout > 2, w("Deployment readinessProbe"), "timeoutSeconds must exceed /readyz's 2 s store timeout")
    tsc = spec.get("topologySpreadConstraints") or []
    report.check(bool(tsc), w("Deployment"), "topologySpreadConstraints must be set")
    for t in tsc:
        report.check(selects((t.get("labelSelector") or {}).get("matchLabels") or {}, pod_labels), w("Deployment"),
                     f"topology spread on {t.get('topologyKey')} does not select the pods")
    autoscaled = bool(find(objects, "HorizontalPodAutoscaler"))
    report.check(("replicas" in dep["spec"]) != autoscaled, w("Deployment"), "replicas must be set exactly when no HPA manages it")

    # Configuration: the ConfigMap for the settings, the Secret for the three secrets.
    envfrom = [e["configMapRef"]["name"] for e in server.get("envFrom") or [] if "configMapRef" in e]
    report.check(envfrom == [full], w("Deployment"), f"envFrom must be the ConfigMap {full}")
    cms = find(objects, "ConfigMap", full)
    config: dict[str, Any] = cms[0].get("data") or {} if cms else {}
    report.check(bool(cms), w("ConfigMap"), f"no ConfigMap {full}")
    for key, value in config.items():
        report.check(isinstance(value, str), w(f"ConfigMap {key}"), "must be a string")
        report.check(key.startswith("IDENTSPHERE_"), w(f"ConfigMap {key}"), "not an IDENTSPHERE_ setting")
        report.check(key not in SECRET_VARS, w(f"ConfigMap {key}"), "a secret in the ConfigMap")
        if key in WHOLE_NUMBER_VARS:
            report.check(bool(re.fullmatch(r"[0-9]+", str(value))), w(f"ConfigMap {key}"), f"{value!r} is not a whole number")
    expect = {
        "IDENTSPHERE_BIND": "0.0.0.0:8080",
        "IDENTSPHERE_LOG_FORMAT": "json",
        "IDENTSPHERE_PUBLIC_BASE_URL": values["publicBaseUrl"],
        "IDENTSPHERE_SHUTDOWN_DELAY": str(values["shutdown"]["delaySeconds"]),
        "IDENTSPHERE_SHUTDOWN_TIMEOUT": str(values["shutdown"]["timeoutSeconds"]),
    }
    for key, want in expect.items():
        report.check(config.get(key) == want, w(f"ConfigMap {key}"), f"{config.get(key)!r}, expected {want!r}")
    for key in ("IDENTSPHERE_LOG", "IDENTSPHERE_ACCESS_TOKEN_TTL", "IDENTSPHERE_REFRESH_TOKEN_TTL", "IDENTSPHERE_REFRESH_REUSE_GRACE",
                "IDENTSPHERE_ARGON2_MEMORY_KIB", "IDENTSPHERE_ARGON2_ITERATIONS", "IDENTSPHERE_ARGON2_PARALLELISM",
                "IDENTSPHERE_KEY_ROTATION_INTERVAL"):
        report.check(key in config, w("ConfigMap"), f"{key} is missing")
    report.check(("IDENTSPHERE_METRICS_BIND" in config) == separate, w("ConfigMap"), "IDENTSPHERE_METRICS_BIND exactly when metrics.separatePort")
    if separate:
        report.check(config.get("IDENTSPHERE_METRICS_BIND", "").endswith(f":{ports.get('metrics')}"), w("ConfigMap"),
                     "IDENTSPHERE_METRICS_BIND must name the metrics container port")
    report.check("IDENTSPHERE_DATA_DIR" not in config, w("ConfigMap"), "the embedded store is not for Kubernetes")

    secret_name = values.get("existingSecret") or full
    for var in SECRET_VARS:
        ref = ((env_value(server, var) or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        report.check(ref.get("name") == secret_name, w(f"Deployment env {var}"), f"must come from the Secret {secret_name}")
    secrets = find(objects, "Secret", full)
    if values.get("existingSecret"):
        report.check(not secrets, w("Secret"), "the chart must not create its Secret with existingSecret")
    else:
        report.check(len(secrets) == 1 and set((secrets[0].get("data") or {})) == set(SECRET_VARS), w("Secret"),
                     f"the chart's Secret must hold exactly {', '.join(SECRET_VARS)}")

    # Drain: after SIGTERM the server serves for IDENTSPHERE_SHUTDOWN_DELAY, then drains for
    # IDENTSPHERE_SHUTDOWN_TIMEOUT; the kubelet must wait longer than both (and any preStop hook) before SIGKILL.
    delay = int(config.get("IDENTSPHERE_SHUTDOWN_DELAY") or 0)
    shutdown = int(config.get("IDENTSPHERE_SHUTDOWN_TIMEOUT") or 30)
    pre_stop = int((((server.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds") or 0)
    grace = spec.get("terminationGracePeriodSeconds", 30)
    report.check(grace > pre_stop + delay + shutdown, w("Deployment"),
                 f"terminationGracePeriodSeconds {grace} must exceed preStop {pre_stop} s + IDENTSPHERE_SHUTDOWN_DELAY {delay} s"
                 f" + IDENTSPHERE_SHUTDOWN_TIMEOUT {shutdown} s")

    # Migration Job: a pre-install,pre-upgrade hook running `identsphere migrate` with the database URL, and the
    # Secret it reads exists before it (a hook of lower weight, or existingSecret).
    jobs = find(objects, "Job")
    if report.check(len(jobs) == 1, w("migration Job"), f"expected one, found {len(jobs)}"):
        job = jobs[0]
        ann = job["metadata"].get("annotations") or {}
        report.check(set(ann.get("helm.sh/hook", "").split(",")) == {"pre-install", "pre-upgrade"}, w("migration Job"),
                     "must be a pre-install,pre-upgrade hook")
        check_pod(report, w("migration Job"), job["spec"]["template"])
        jc = job["spec"]["template"]["spec"]["containers"][0]
        report.check(jc.get("args") == ["migrate"] and jc.get("image") == server.get("image"), w("migration Job"),
                     "must run `identsphere migrate` in the server image")
        ref = ((env_value(jc, "IDENTSPHERE_DATABASE_URL") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        if values.get("existingSecret"):
            report.check(ref.get("name") == values["existingSecret"], w("migration Job"), "must read the database URL from existingSecret")
        else:
            hook_secret = find(objects, "Secret", ref.get("name"))
            ok = bool(hook_secret) and "pre-install" in (hook_secret[0]["metadata"].get("annotations") or {}).get("helm.sh/hook", "")
            if report.check(ok, w("migration Job"), f"reads Secret {ref.get('name')!r}, which is not a pre-install hook of the chart"):
                sw = int(hook_secret[0]["metadata"]["annotations"].get("helm.sh/hook-weight", "0"))
                jw = int(ann.get("helm.sh/hook-weight", "0"))
                report.check(sw < jw, w("migration Job"), f"its Secret's hook weight {sw} must be lower than the Job's {jw}")
                report.check(ref.get("key") in (hook_secret[0].get("data") or {}), w("migration Job"), "its Secret lacks the key it reads")
        for var in SECRET_VARS[1:]:
            report.check(env_value(jc, var) is None, w("migration Job"), f"needs only the database URL, not {var}")
        check_ca_files(report, w("migration Job"), values, job["spec"]["template"]["spec"], jc, ("database",))
    check_ca_files(report, w("Deployment"), values, spec, server, ("database", "redis"))

    # Service, and everything that points at it or at the pods.
    services = find(objects, "Service", full)
    if report.check(len(services) == 1, w("Service"), "missing"):
        svc = services[0]
        report.check(selects(svc["spec"]["selector"], pod_labels), w("Service"), "does not select the server pods")
        sports = {p["name"]: p for p in svc["spec"]["ports"]}
        report.check(sports.get("http", {}).get("targetPort") in ("http", 8080), w("Service"), "http must target the http port")
        report.check(("metrics" in sports) == separate, w("Service"), "a metrics port exactly when metrics.separatePort")
        for sm in find(objects, "ServiceMonitor"):
            report.check(selects(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"]), w("ServiceMonitor"), "does not select the Service")
            for ep in sm["spec"]["endpoints"]:
                report.check(ep["port"] in sports, w("ServiceMonitor"), f"port {ep['port']} is not a Service port")
                report.check(ep["port"] == ("metrics" if separate else "http") and ep.get("path") == "/metrics", w("ServiceMonitor"),
                             "must scrape /metrics on the metrics port when it is separate, else on http")
        for ing in find(objects, "Ingress"):
            for rule in ing["spec"]["rules"]:
                for p in rule["http"]["paths"]:
                    backend = p["backend"]["service"]
                    report.check(backend["name"] == full and backend["port"].get("name") == "http", w("Ingress"), "backend is not the Service's http port")
    for hpa in find(objects, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        report.check(ref["kind"] == "Deployment" and ref["name"] == dep["metadata"]["name"], w("HPA"), "does not target the Deployment")
        report.check(hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"], w("HPA"), "minReplicas above maxReplicas")
    for pdb in find(objects, "PodDisruptionBudget"):
        report.check(selects(pdb["spec"]["selector"]["matchLabels"], pod_labels), w("PDB"), "does not select the server pods")
    for np in find(objects, "NetworkPolicy"):
        sel = np["spec"]["podSelector"].get("matchLabels") or {}
        report.check(selects(sel, pod_labels), w("NetworkPolicy"), "does not select the server pods")
        if jobs:
            report.check(selects(sel, jobs[0]["spec"]["template"]["metadata"]["labels"]), w("NetworkPolicy"), "does not select the migration pods")
        for rule in np["spec"].get("ingress") or []:
            for p in rule.get("ports") or []:
                report.check(p.get("port") in ports or p.get("port") in ports.values(), w("NetworkPolicy"), f"ingress port {p.get('port')} is no container port")
    sa_name = spec.get("serviceAccountName")
    for sa in find(objects, "ServiceAccount"):
        report.check(sa["metadata"]["name"] == sa_name, w("ServiceAccount"), "is not the one the pods use")
        report.check(sa.get("automountServiceAccountToken") is False, w("ServiceAccount"), "automountServiceAccountToken must be false")

    # What each value set must switch on.
    if case == "defaults":
        # Without IDENTSPHERE_METRICS_BIND the server answers /metrics on the main port, which an Ingress makes
        # public: by default it must be on its own port, one the Service names `metrics` and no Ingress routes to.
        bind = config.get("IDENTSPHERE_METRICS_BIND", "")
        metrics_port = ports.get("metrics")
        report.check(bool(bind) and metrics_port not in (None, ports.get("http")) and bind.endswith(f":{metrics_port}"),
                     w("metrics"), "the default values must serve /metrics on the separate metrics port, not on the public http port")
    if case == "production":
        for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule", "NetworkPolicy", "Ingress"):
            report.check(bool(find(objects, kind)), w(kind), "the production values enable it, but it is not rendered")
        report.check(separate, w("metrics"), "the production values use a separate metrics port")
        report.check("@sha256:" in server.get("image", ""), w("image"), "the production values pin the image by digest")


# ----------------------------------------------------------------------------------------------- PromQL, dashboard


def promql_metrics(report: Report, where: str, expr: str) -> set[str]:
    """Parses expr; checks metric names, matchers and grouping labels; returns the metric names used."""
    try:
        ast = promql_parser.parse(expr)
    except ValueError as err:
        report.fail(where, f"PromQL does not parse: {err}: {expr}")
        return set()
    selectors: list[Any] = []
    groupings: list[list[str]] = []

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            selectors.append(node)
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            groupings.append(list(node.modifier.labels))
        return True

    promql_parser.walk(ast, visit)
    names: set[str] = set()
    labels_in_scope: set[str] = set(TARGET_LABELS)
    for sel in selectors:
        name = sel.name
        base, suffix = name, ""
        for s in ("_bucket", "_sum", "_count"):
            if name.endswith(s) and METRICS.get(name[: -len(s)], {}).get("type") == HISTOGRAM:
                base, suffix = name[: -len(s)], s
        spec = METRICS.get(base)
        if not report.check(spec is not None, where, f"unknown metric {name} (the server does not export it)"):
            continue
        if spec.get("type") == HISTOGRAM and not suffix:
            report.fail(where, f"{name} is a histogram: use {name}_bucket, _sum or _count")
        names.add(name)
        labels = spec["labels"]
        labels_in_scope |= set(labels) | ({"le"} if suffix == "_bucket" else set())
        for m in sel.matchers.matchers:
            if m.name in TARGET_LABELS or m.name == "__name__":
                continue
            if not report.check(m.name in labels, where, f"{name} has no label {m.name}"):
                continue
            allowed = labels[m.name]
            if allowed is not None and str(m.op) == "MatchOp.Equal":
                report.check(m.value in allowed, where, f'{name}{{{m.name}="{m.value}"}} never exists (values: {", ".join(sorted(allowed))})')
    for group in groupings:
        for label in group:
            report.check(label in labels_in_scope, where, f"grouping by {label}, which no series in the expression has")
    return names


def check_alerts(report: Report, case: str, objects: list[dict[str, Any]], used: set[str]) -> int:
    rules = [r for pr in find(objects, "PrometheusRule") for g in pr["spec"]["groups"] for r in g["rules"]]
    if not rules:
        return 0
    by_name = {r.get("alert"): r for r in rules}
    for alert, metric in ALERTS.items():
        rule = by_name.get(alert)
        if report.check(rule is not None, f"{case}: PrometheusRule", f"alert {alert} is missing"):
            report.check(metric in rule["expr"], f"{case}: {alert}", f"must watch {metric}")
            report.check("severity" in (rule.get("labels") or {}), f"{case}: {alert}", "needs a severity label")
    for rule in rules:
        used |= promql_metrics(report, f"{case}: alert {rule.get('alert')}", rule["expr"])
    return len(rules)


def dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    out = []

    def panels(items: list[dict[str, Any]]) -> None:
        for p in items:
            for t in p.get("targets") or []:
                if t.get("expr"):
                    out.append((p.get("title", "?"), t["expr"]))
            panels(p.get("panels") or [])

    panels(dashboard.get("panels") or [])
    return out


def check_dashboard(report: Report, objects_by_case: dict[str, list[dict[str, Any]]], all_used: set[str]) -> int:
    path = CHART / "dashboards" / "identsphere.json"
    try:
        dashboard = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        report.fail("dashboard", f"{path}: {err}")
        return 0
    for key in ("title", "uid", "panels", "schemaVersion"):
        report.check(key in dashboard, "dashboard", f"no {key}")
    ids = [p.get("id") for p in dashboard.get("panels") or []]
    report.check(len(ids) == len(set(ids)), "dashboard", "panel ids are not unique")
    used: set[str] = set()
    exprs = dashboard_exprs(dashboard)
    for title, expr in exprs:
        # Grafana variables, as Grafana would interpolate them.
        concrete = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
        concrete = re.sub(r"\$\{?(namespace|job)\}?", ".*", concrete)
        for name in promql_metrics(report, f"dashboard panel {title!r}", concrete):
            all_used.add(name)
            used.add(re.sub(r"_(bucket|sum|count)$", "", name))
    for metric in sorted(DASHBOARD_METRICS - used):
        report.fail("dashboard", f"shows nothing of {metric}")
    # Shipped as a ConfigMap for the Grafana sidecar when grafanaDashboard.enabled: it must be the same JSON.
    for case, objects in objects_by_case.items():
        for cm in find(objects, "ConfigMap"):
            data = cm.get("data") or {}
            if "identsphere.json" in data:
                report.check(json.loads(data["identsphere.json"]) == dashboard, f"{case}: dashboard ConfigMap", "differs from dashboards/identsphere.json")
                report.check((cm["metadata"].get("labels") or {}).get("grafana_dashboard") == "1", f"{case}: dashboard ConfigMap", "needs label grafana_dashboard=1")
    return len(exprs)


# -------------------------------------------------------------------------------------------------------- checkov


def skip_annotations(report: Report, case: str, objects: list[dict[str, Any]]) -> list[str]:
    """Every checkov skip must parse (checkov splits ID=justification on '=') and say why."""
    skips = []
    for doc in objects:
        for key, value in (doc["metadata"].get("annotations") or {}).items():
            if key.startswith("checkov.io/skip"):
                parts = str(value).split("=")
                ok = len(parts) == 2 and re.fullmatch(r"CKV2?_K8S_\d+", parts[0]) and len(parts[1].strip()) >= 20
                report.check(bool(ok), f"{case}: {doc['kind']} {doc['metadata']['name']}", f"{key} must be 'CKV_K8S_NN=<justification without =>': {value!r}")
                skips.append(f"{parts[0]} on {doc['kind']}/{doc['metadata']['name']}")
    return skips


def start_checkov(args: list[str]) -> subprocess.Popen[str]:
    checkov = Path(sys.executable).with_name("checkov")
    env = dict(os.environ, LOG_LEVEL="ERROR", CHECKOV_NO_OUTPUT_PROGRESS="1", BC_SKIP_MAPPING="TRUE")
    cmd = [str(checkov), "--skip-download", "--compact", "-o", "json", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish_checkov(report: Report, where: str, proc: subprocess.Popen[str]) -> tuple[int, int, int, list[str]]:
    """Waits for a checkov run: returns passed, failed, skipped, and the skips with their justification."""
    try:
        stdout, stderr = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        report.fail(where, "checkov did not finish within 600 s")
        return 0, 0, 0, []
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError:
        report.fail(where, f"checkov exited {proc.returncode} without a JSON report: {(stderr or stdout).strip()[-2000:]}")
        return 0, 0, 0, []
    passed = failed = skipped = 0
    skips = []
    for result in data if isinstance(data, list) else [data]:
        summary = result.get("summary") or {}
        passed += summary.get("passed", 0)
        failed += summary.get("failed", 0)
        skipped += summary.get("skipped", 0)
        report.check(summary.get("parsing_errors", 0) == 0, where, f"checkov could not parse {summary.get('parsing_errors')} file(s)")
        results = result.get("results") or {}
        for check in results.get("failed_checks") or []:
            report.fail(where, f"checkov {check['check_id']} {check.get('check_name')}: {check.get('resource')} ({Path(check.get('file_path', '')).name})")
        for check in results.get("skipped_checks") or []:
            comment = (check.get("check_result") or {}).get("suppress_comment") or ""
            report.check(len(comment.strip()) >= 20, where, f"checkov skip {check['check_id']} on {check.get('resource')} has no justification")
            resource = re.sub(r"^(Pod\.[^.]+\.[^.]+)\..*$", r"\1 (pod template)", str(check.get("resource")))
            skips.append(f"{check['check_id']} on {resource}: {comment}")
    report.check(failed == 0 and proc.returncode == 0 or failed > 0, where, f"checkov exited {proc.returncode}: {stderr.strip()[-2000:]}")
    if passed == 0:
        report.fail(where, "checkov passed no check: did it scan anything?")
    return passed, failed, skipped, skips


# ---------------------------------------------------------------------------------------------- server cross-check


def server_crosscheck(report: Report, objects_by_case: dict[str, list[dict[str, Any]]], metrics_used: set[str]) -> list[str]:
    """The chart relies on variables and metrics the server must implement: look for them in its sources."""
    sources = "".join(p.read_text(errors="replace") for d in ("src", "actors") for p in sorted((ROOT / d).rglob("*.rs")))
    if not sources:
        return ["server sources not found: cross-check skipped"]
    wanted_vars: set[str] = set()
    for objects in objects_by_case.values():
        for cm in find(objects, "ConfigMap", RELEASE):
            wanted_vars |= set((cm.get("data") or {}).keys())
        for kind in ("Deployment", "Job"):
            for obj in find(objects, kind):
                for c in obj["spec"]["template"]["spec"]["containers"]:
                    wanted_vars |= {e["name"] for e in c.get("env") or [] if e["name"].startswith("IDENTSPHERE_")}
    missing = sorted(v for v in wanted_vars if f'"{v}"' not in sources)
    missing += sorted(m for m in metrics_used if m != "up" and f'"{m}"' not in sources)
    strict = os.environ.get("IDENTSPHERE_CHART_REQUIRE_SERVER", "1") != "0"
    for name in missing:
        (report.fail if strict else report.warn)("server", f"{name} is used by the chart but not found in src/ or actors/")
    return missing


# ---------------------------------------------------------------------------------------------------------- main


def step(title: str, started: float) -> None:
    print(f"== {title} ({time.monotonic() - started:.1f}s)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="keep the rendered manifests in this directory")
    args = parser.parse_args()
    started = time.monotonic()
    report = Report()
    out = args.out or Path(tempfile.mkdtemp(prefix="identsphere-chart-"))
    if args.out and out.exists():
        shutil.rmtree(out)
    chart = helm.Chart.load(CHART)
    production = yaml.safe_load(PRODUCTION_VALUES.read_text()) or {}
    cases = {"defaults": REQUIRED_VALUES, "production": production}
    print(f"chart {chart.name} {chart.version} (app {chart.metadata.get('appVersion')}); Helm SDK {helm.helm_sdk_version()}; "
          f"Kubernetes schemas {', '.join(KUBE_VERSIONS)}; rendering into {out}" + ("" if args.out else " (removed if all passes)"))

    objects_by_case: dict[str, list[dict[str, Any]]] = {}
    validated = 0
    for case, values in cases.items():
        step(f"{case}: helm lint --strict, render", started)
        lint(report, case, values)
        try:
            rendered = render(chart, values)
        except helm.HelmError as err:
            report.fail(f"{case}: render", str(err))
            continue
        objects = manifests_of(report, case, rendered, out / case)
        objects_by_case[case] = objects
        kinds = sorted(f"{o['kind']}" for o in objects)
        report.summary(f"{case}: {len(objects)} objects ({', '.join(kinds)})")
        step(f"{case}: kubernetes-validate --strict, chart promises", started)
        validated += validate_schemas(report, case, objects)
        check_promises(report, case, merge(chart.values, values), objects)
    report.summary(f"schema validations: {validated} (kubernetes-validate strict against {' and '.join(KUBE_VERSIONS)}; ServiceMonitor and PrometheusRule structurally)")

    step("values the chart must refuse", started)
    refused = negative_cases(report, chart)
    report.summary(f"refused value sets: {refused}")

    step("alerts and dashboard (PromQL)", started)
    metrics_used: set[str] = set()
    alerts = sum(check_alerts(report, case, objects, metrics_used) for case, objects in objects_by_case.items())
    report.check(alerts > 0, "production", "no alert rules rendered")
    queries = check_dashboard(report, objects_by_case, metrics_used)
    report.summary(f"PromQL: {alerts} alert rules and {queries} dashboard queries parse and use only exported metrics and labels")
    metrics_used = {re.sub(r"_(bucket|sum|count)$", "", m) for m in metrics_used}

    step("checkov (kubernetes on the rendered manifests, dockerfile)", started)
    runs = {f"checkov kubernetes, {case}": start_checkov(["--framework", "kubernetes", "-d", str(out / case)]) for case in objects_by_case}
    runs["checkov dockerfile"] = start_checkov(["--framework", "dockerfile", "-f", str(ROOT / "Dockerfile")])
    for case, objects in objects_by_case.items():
        skip_annotations(report, case, objects)
    skips: list[str] = []
    for where, proc in runs.items():
        p, f, s, found = finish_checkov(report, where, proc)
        report.summary(f"{where}: {p} passed, {f} failed, {s} skipped")
        skips += [f"{where.removeprefix('checkov ')}: {x}" for x in found]

    step("server cross-check", started)
    missing = server_crosscheck(report, objects_by_case, metrics_used)

    print("\n== summary")
    for line in report.lines:
        print(f"  {line}")
    if skips:
        print("  checkov skips (each justified where it is declared):")
        for skip in skips:
            print(f"    {skip}")
    if missing:
        print(f"  server: {len(missing)} setting(s)/metric(s) the chart uses are not in the sources yet: {', '.join(missing)}"
              + ("" if os.environ.get("IDENTSPHERE_CHART_REQUIRE_SERVER", "1") != "0" else " (warnings only: IDENTSPHERE_CHART_REQUIRE_SERVER=0)"))
    elapsed = time.monotonic() - started
    if report.failures:
        print(f"\nchart check FAILED: {len(report.failures)} failure(s) in {elapsed:.1f}s; manifests kept in {out}")
        for failure in report.failures:
            print(f"  - {failure}")
        return 1
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)
    print(f"\nchart check passed in {elapsed:.1f}s ({len(report.warnings)} warning(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
