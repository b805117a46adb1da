#!/usr/bin/env bash
# Makes every Secret the Kubernetes manifests (k8s/) reference, into OUTDIR:
#   - NATS: `tollgate nats-config` writes the users and permissions
#     (Secret tollgate-nats-auth, included by nats.conf) and one .creds file per
#     identity (Secret tollgate-nats-<identity>, mounted at /etc/tollgate/nats);
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

secret() {
    kubectl create secret generic "$1" --namespace "$namespace" "${@:2}" \
        --dry-run=client --output yaml
    echo ---
}
{
    secret tollgate-nats-auth --from-file=nats-server.conf="$out/nats/nats-server.conf"
    for id in "${nats_identities[@]}"; do
        secret "tollgate-nats-$id" --from-file="$id.creds=$out/nats/$id.creds"
    done
    secret tollgate-registry-tokens --from-file=tokens.toml="$tokens"
    for id in "${token_identities[@]}" ci; do
        secret "tollgate-token-$id" --from-file=token="$out/tokens/$id"
    done
} >"$out/secrets.yaml"
echo "wrote $out/secrets.yaml: kubectl apply -f $out/secrets.yaml" >&2
echo "CI's registry token is in $out/tokens/ci, its NATS credentials in $out/nats/ci.creds" >&2
