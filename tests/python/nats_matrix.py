"""The NATS permission matrix, played with nats-py (a standard client, not Tollgate's).

Usage: nats_matrix.py NATS_URL CREDS_DIR

Each Tollgate identity signs in with its `.nk` seed file from `tollgate nats-config` and
tries what it must not do: delete a consumer, purge or delete a stream or its messages,
create a stream, write the models bucket, start Production, read another identity's
inbox. Each must be refused with a permissions violation. Then it does what its job
needs, which must be answered. Prints one line per check and exits 1 when any is wrong.
"""

import asyncio
import json
import os
import sys

import nats
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

# The names Tollgate gives its subjects and streams, from the Rust side's one subjects
# module (the test passes them), so this script spells none of them itself.
NAMES = json.loads(os.environ["TOLLGATE_MATRIX_NAMES"])
WORK = NAMES["work_stream"]
STREAMS = NAMES["streams"]
IDENTITIES = [
    "registry",
    "trigger-watcher",
    "data-validator",
    "trainer",
    "gate",
    "promoter",
    "server",
    "ci",
    "viewer",
    "operator",
]


def forbidden(identity):
    """What `identity` must not publish to: (subject, why)."""
    out = []
    for stream in STREAMS:
        out.append((f"$JS.API.CONSUMER.DELETE.{stream}.stage-train", "consumer delete"))
        out.append((f"$JS.API.STREAM.DELETE.{stream}", "stream delete"))
        # The operator replays a dead letter: republishes it and removes it.
        if not (identity == "operator" and stream == "TOLLGATE_DEADLETTER"):
            out.append((f"$JS.API.STREAM.MSG.DELETE.{stream}", "message delete"))
        if not (identity == "operator" and stream == "OBJ_tollgate_datasets"):
            out.append((f"$JS.API.STREAM.PURGE.{stream}", "stream purge"))
        if identity != "registry":
            out.append((f"$JS.API.STREAM.CREATE.{stream}", "stream create"))
    out.append(("$JS.API.STREAM.CREATE.EVIL", "stream create"))
    out.append(("$JS.API.STREAM.UPDATE.TOLLGATE_WORK", "stream update"))
    if identity != "registry":
        out.append(("$KV.tollgate_models.churn.v.1", "KV put on the models bucket"))
        out.append(("$KV.tollgate_specs.current.churn", "KV put of a model's policy"))
        out.append((NAMES["production"], "start Production"))
        out.append((NAMES["model_trigger"], "announce a model change"))
    if identity not in ("registry", "gate"):
        out.append((NAMES["promote"], "start promote"))
    return out


def read(stream, subject, what):
    """A direct read of the last message on `subject` of `stream`: (subject, payload, why)."""
    payload = json.dumps({"last_by_subj": subject}).encode()
    return (f"$JS.API.STREAM.MSG.GET.{stream}", payload, what)


def needed(identity):
    """Requests `identity`'s job needs, which must be answered: (subject, payload, why)."""
    info = (f"$JS.API.STREAM.INFO.{WORK}", b"", "stream info")
    jobs = {
        "registry": [
            (f"$JS.API.STREAM.CREATE.{WORK}", b'{"name":"TOLLGATE_WORK"}', "stream create"),
            read("KV_tollgate_models", "$KV.tollgate_models.none", "models read"),
        ],
        "trigger-watcher": [
            read("KV_tollgate_specs", "$KV.tollgate_specs.none", "specs read"),
        ],
        "data-validator": [
            read("OBJ_tollgate_datasets", "$O.tollgate_datasets.M.none", "datasets read"),
        ],
        "trainer": [
            read("OBJ_tollgate_code", "$O.tollgate_code.M.none", "code read"),
        ],
        "gate": [
            read("OBJ_tollgate_datasets", "$O.tollgate_datasets.M.none", "datasets read"),
        ],
        "promoter": [
            read("KV_tollgate_specs", "$KV.tollgate_specs.none", "specs read"),
        ],
        "server": [
            read("KV_tollgate_specs", "$KV.tollgate_specs.none", "specs read"),
        ],
        "ci": [],
        "viewer": [
            read("KV_tollgate_runs", "$KV.tollgate_runs.none", "runs read"),
        ],
        "operator": [
            read("KV_tollgate_models", "$KV.tollgate_models.none", "models read"),
        ],
    }
    return [info] + jobs[identity]


async def check(url, creds, identity):
    """Plays `identity`; returns the wrong outcomes."""
    errors = []

    async def on_error(e):
        errors.append(str(e))

    inbox = "_INBOX_" + identity.replace("-", "_")
    nc = await nats.connect(
        url,
        nkeys_seed=f"{creds}/{identity}.nk",
        inbox_prefix=inbox,
        error_cb=on_error,
        allow_reconnect=False,
        connect_timeout=5,
    )
    wrong = []

    async def refused(action, subject, what):
        errors.clear()
        if action == "pub":
            await nc.publish(subject, b"{}")
        else:
            await nc.subscribe(subject)
        await nc.flush()
        for _ in range(40):
            if errors:
                break
            await asyncio.sleep(0.025)
        said = " ".join(errors).lower()
        kind = "publish" if action == "pub" else "subscription"
        ok = "permissions violation" in said and kind in said and subject.lower() in said
        print(f"{identity:16} {'refused' if ok else 'ALLOWED':8} {what}: {subject}")
        if not ok:
            wrong.append(f"{identity} may {what}: {subject}")

    for subject, what in forbidden(identity):
        await refused("pub", subject, what)
    for other in IDENTITIES:
        if other != identity:
            prefix = "_INBOX_" + other.replace("-", "_")
            await refused("sub", f"{prefix}.>", f"read {other}'s replies")
    await refused("sub", ">", "read everything")

    # What its job needs is answered (a JetStream reply, even "not found").
    for subject, payload, what in needed(identity):
        try:
            await nc.request(subject, payload, timeout=3)
            print(f"{identity:16} {'answered':8} {what}: {subject}")
        except (NatsTimeout, NoRespondersError) as e:
            print(f"{identity:16} {'NO ANSWER':8} {what}: {subject} ({e!r}; {errors})")
            wrong.append(f"{identity} cannot {what}: {subject}")
    await nc.close()
    return wrong


async def ignore(_error):
    """Refusals in the object-store checks surface as the call's exception."""


async def main(url, creds):
    wrong = []
    for identity in IDENTITIES:
        wrong += await check(url, creds, identity)
    # An object store as nats-py uses it: the trainer adds an artifact and cannot
    # delete (purge) it; CI the same with a code snapshot.
    for identity, store in (("trainer", "tollgate_artifacts"), ("ci", "tollgate_code")):
        nc = await nats.connect(
            url,
            nkeys_seed=f"{creds}/{identity}.nk",
            inbox_prefix="_INBOX_" + identity,
            error_cb=ignore,
        )
        obj = await nc.jetstream(timeout=3).object_store(store)
        await obj.put("matrix/probe", b"probe bytes")
        print(f"{identity:16} {'answered':8} object put: {store}")
        try:
            await obj.delete("matrix/probe")
            print(f"{identity:16} {'ALLOWED':8} object delete: {store}")
            wrong.append(f"{identity} may delete from {store}")
        except Exception as e:  # nats-py raises its own error types for a refusal
            print(f"{identity:16} {'refused':8} object delete: {store} ({type(e).__name__})")
        await nc.close()
    if wrong:
        print("\nwrong:\n" + "\n".join(wrong))
        sys.exit(1)
    print("\nevery identity refused what it must not do and answered what it needs")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
