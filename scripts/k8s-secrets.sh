#!/usr/bin/env bash
# Makes every Secret the Kubernetes manifests (k8s/) reference, into OUTDIR:
#   - NATS: `tollgate nats-config` writes the users and permissions
#     (Secret tollgate-nats-auth, included by nats.conf) and one .creds file per
#     identity (Secret tollgate-nats-<identity>, mounted at /etc/tollgate/nats);
#   - NATS cluster routes (the prod overlay): a CA, a certificate for the nodes and a
#     route user with a random password (Secret tollgate-nats-cluster, included by the
#     cluster block): routes need both, mutual TLS and the password;
#   - registry: a `service` token for each service that calls the registry (Secret
#     tollgate-token-<identity>, as TOLLGATE_TOKEN) and a `ci` token for CI, with their
#     digests in tokens.toml (Secret tollgate-registry-tokens, TOLLGATE_TOKENS_FILE).
# It writes OUTDIR/secrets.yaml; apply it with `kubectl apply -f OUTDIR/secrets.yaml`.
# Run it again with the same OUTDIR to rotate tokens; delete a .creds file to rotate that
# identity's NATS key (then restart NATS and that service). Keep OUTDIR private.
#
# Usage: scripts/k8s-secrets.sh OUTDIR [NAMESPACE]   (TOLLGATE_BIN: the tollgate binary)
set -euo pipefail

out=${1:?usage: scripts/k8s-secrets.sh OUTDIR [NAMESPACE]}
namespace=${2:-tollgate}
tollgate=${TOLLGATE_BIN:-tollgate}
command -v kubectl >/dev/null || {
    echo "kubectl is needed to write the Secrets: https://kubernetes.io/docs/tasks/tools/" >&2
    exit 2
}

umask 077
mkdir -p "$out/nats" "$out/tokens"
"$tollgate" nats-config --out "$out/nats" >&2

# The identities that sign in to NATS, and those that call the registry with a token.
nats_identities=(registry trigger-watcher data-validator trainer gate promoter server ci viewer operator admin)
token_identities=(data-validator trainer gate promoter server)

tokens="$out/tokens.toml"
rm -f "$tokens"
# Each service's token has its own job's role (least privilege): only the trainer
# registers versions, only the gate records decisions, only the promoter moves stages; the
# data-validator and the model server read.
role_of() {
    case "$1" in
        trainer | gate | promoter) echo "$1" ;;
        *) echo viewer ;;
    esac
}
for id in "${token_identities[@]}"; do
    TOLLGATE_TOKENS_FILE="$tokens" "$tollgate" token create --identity "$id" --role "$(role_of "$id")" \
        | tr -d '\n' >"$out/tokens/$id"
done
TOLLGATE_TOKENS_FILE="$tokens" "$tollgate" token create --identity ci --role ci \
    | tr -d '\n' >"$out/tokens/ci"
# The trigger-watcher's init container applies the spec ConfigMap as an admin.
TOLLGATE_TOKENS_FILE="$tokens" "$tollgate" token create --identity spec-admin --role admin \
    | tr -d '\n' >"$out/tokens/spec-admin"

# Cluster routes: mutual TLS with a CA of their own, and a route user. Kept across runs
# like the .creds files; delete OUTDIR/nats-cluster to rotate.
cluster="$out/nats-cluster"
if [ ! -f "$cluster/cluster.conf" ]; then
    command -v openssl >/dev/null || {
        echo "openssl is needed to make the NATS cluster's route certificates" >&2
        exit 2
    }
    mkdir -p "$cluster"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=tollgate-nats-cluster-ca" -keyout "$cluster/ca.key" -out "$cluster/ca.crt" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=nats-headless" -keyout "$cluster/tls.key" -out "$cluster/tls.csr" 2>/dev/null
    sans="DNS:*.nats-headless,DNS:*.nats-headless.$namespace.svc,DNS:*.nats-headless.$namespace.svc.cluster.local"
    openssl x509 -req -in "$cluster/tls.csr" -CA "$cluster/ca.crt" -CAkey "$cluster/ca.key" \
        -CAcreateserial -days 3650 -out "$cluster/tls.crt" \
        -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$sans") 2>/dev/null
    rm -f "$cluster/tls.csr" "$cluster/ca.srl"
    password=$(openssl rand -hex 24)
    {
        echo "# NATS cluster routes: mutual TLS and the route user (scripts/k8s-secrets.sh)."
        echo "authorization { user: route, password: \"$password\", timeout: 2 }"
        echo "tls {"
        echo "  cert_file: \"/etc/nats/cluster/tls.crt\""
        echo "  key_file: \"/etc/nats/cluster/tls.key\""
        echo "  ca_file: \"/etc/nats/cluster/ca.crt\""
        echo "  verify: true"
        echo "}"
        echo "routes: ["
        for i in 0 1 2; do
            echo "  \"nats://route:$password@nats-$i.nats-headless:6222\""
        done
        echo "]"
    } >"$cluster/cluster.conf"
fi

secret() {
    kubectl create secret generic "$1" --namespace "$namespace" "${@:2}" \
        --dry-run=client --output yaml
    echo ---
}
{
    secret tollgate-nats-auth --from-file=nats-server.conf="$out/nats/nats-server.conf"
    secret tollgate-nats-cluster --from-file=cluster.conf="$cluster/cluster.conf" \
        --from-file=ca.crt="$cluster/ca.crt" --from-file=tls.crt="$cluster/tls.crt" \
        --from-file=tls.key="$cluster/tls.key"
    for id in "${nats_identities[@]}"; do
        secret "tollgate-nats-$id" --from-file="$id.creds=$out/nats/$id.creds"
    done
    secret tollgate-registry-tokens --from-file=tokens.toml="$tokens"
    for id in "${token_identities[@]}" ci spec-admin; do
        secret "tollgate-token-$id" --from-file=token="$out/tokens/$id"
    done
} >"$out/secrets.yaml"
echo "wrote $out/secrets.yaml: kubectl apply -f $out/secrets.yaml" >&2
echo "CI's registry token is in $out/tokens/ci, its NATS credentials in $out/nats/ci.creds" >&2
