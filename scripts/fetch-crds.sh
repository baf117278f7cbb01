#!/usr/bin/env bash
# Fills a folder with the upstream CRD schemas `mlgate manifests validate` reads
# (MLGATE_CRD_SCHEMAS). Pinned releases; see docs/gitops.md. Used by the GitHub workflow; on a
# machine with ../shared/schemas/crds beside the checkout nothing needs fetching.
set -euo pipefail
dest=${1:?usage: scripts/fetch-crds.sh DIR}
mkdir -p "$dest"
gh=https://raw.githubusercontent.com
while read -r file url; do
  [ -n "$file" ] || continue
  curl -fsSL --retry 3 -o "$dest/$file.tmp" "$url"
  mv "$dest/$file.tmp" "$dest/$file"
done <<LIST
machinelearning.seldon.io_seldondeployments.v1.19.yaml $gh/SeldonIO/seldon-core/v1.19.0-rc.1/operator/config/crd/bases/machinelearning.seldon.io_seldondeployments.yaml
argoproj.io_applications.v3.5.1.yaml $gh/argoproj/argo-cd/v3.5.1/manifests/crds/application-crd.yaml
argoproj.io_applicationsets.v3.5.1.yaml $gh/argoproj/argo-cd/v3.5.1/manifests/crds/applicationset-crd.yaml
argoproj.io_appprojects.v3.5.1.yaml $gh/argoproj/argo-cd/v3.5.1/manifests/crds/appproject-crd.yaml
monitoring.coreos.com_servicemonitors.v0.93.0.yaml $gh/prometheus-operator/prometheus-operator/v0.93.0/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml
monitoring.coreos.com_prometheusrules.v0.93.0.yaml $gh/prometheus-operator/prometheus-operator/v0.93.0/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml
LIST
echo "CRD schemas in $dest"
