#!/usr/bin/env bash
# Installs the real Kafka-protocol peers that Brook's interop tests run against:
#   Debian: kcat, librdkafka-dev (and python3-venv when the python3 in use needs it)
#   Debian: postgresql (initdb/pg_ctl) when no PostgreSQL server binaries are present
#   PyPI (into .venv/): confluent-kafka, kafka-python, pytest, prometheus_client (tests/interop/requirements.txt)
# Idempotent: does nothing that is already done. Fails loudly when anything cannot be installed:
# the interop tests must never silently skip.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VENV="$ROOT/.venv"
REQ="$ROOT/tests/interop/requirements.txt"

say() { printf 'setup-peers: %s\n' "$*"; }
die() { printf 'setup-peers: ERROR: %s\n' "$*" >&2; exit 1; }

# ---- Debian packages --------------------------------------------------------------------------
missing=()
for pkg in kcat librdkafka-dev; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null 2>&1 || missing+=(python3)
if command -v "$PY" >/dev/null 2>&1 && ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi

if ((${#missing[@]})); then
    [[ $(id -u) -eq 0 ]] || die "missing Debian packages (${missing[*]}) and not root; install them with: sudo apt-get install -y ${missing[*]}"
    command -v apt-get >/dev/null 2>&1 || die "missing packages (${missing[*]}) and no apt-get on this machine"
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
else
    say "Debian packages already installed: kcat librdkafka-dev"
fi
command -v kcat >/dev/null 2>&1 || die "kcat is not on PATH after installation"
command -v "$PY" >/dev/null 2>&1 || die "$PY is not on PATH after installation"
say "kcat: $(kcat -V 2>&1 | grep -m1 -i version || kcat -V 2>&1 | head -n1)"

# ---- PostgreSQL server binaries (BrookLedgerTests start a throwaway cluster) --------------------
pg_bin() { command -v initdb >/dev/null 2>&1 && return 0; ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
if ! pg_bin; then
    [[ $(id -u) -eq 0 ]] || die "PostgreSQL server binaries missing and not root; install them with: sudo apt-get install -y postgresql"
    say "installing Debian package: postgresql (initdb, pg_ctl for the ledger tests)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null || die "apt-get install postgresql failed"
    pg_bin || die "initdb not found after installing postgresql"
fi
command -v runuser >/dev/null 2>&1 || die "runuser (util-linux) is needed to run initdb as a non-root user"
say "PostgreSQL: $( (command -v initdb >/dev/null 2>&1 && initdb --version) || ls -d /usr/lib/postgresql/*/bin | tail -n1)"

# ---- Python venv ------------------------------------------------------------------------------
stamp="$VENV/.brook-requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [[ -x "$VENV/bin/python" ]] && [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$want" ]] \
    && "$VENV/bin/python" -c 'import confluent_kafka, kafka, pytest, prometheus_client' >/dev/null 2>&1; then
    say "venv $VENV is up to date"
else
    if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        say "creating venv $VENV with $("$PY" --version 2>&1)"
        rm -rf "$VENV"
        "$PY" -m venv "$VENV" || die "cannot create venv at $VENV"
    fi
    say "installing Python peers from $REQ"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ" \
        || die "pip install -r $REQ failed"
    "$VENV/bin/python" -c 'import confluent_kafka, kafka, pytest, prometheus_client' \
        || die "Python peers do not import after installation"
    echo "$want" > "$stamp"
fi
"$VENV/bin/python" - <<'PY'
import confluent_kafka, kafka, pytest
print("setup-peers: confluent-kafka %s (librdkafka %s), kafka-python %s, pytest %s" % (
    confluent_kafka.__version__, confluent_kafka.libversion()[0], kafka.__version__, pytest.__version__))
PY
say "done"
