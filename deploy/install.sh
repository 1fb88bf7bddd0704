#!/usr/bin/env bash
# Install (or upgrade) the Siaga 112 backend on Debian 12 as a systemd service.
#
#   sudo deploy/install.sh [WHEEL]
#
# WHEEL: a built siaga112-*.whl; without it, one is built from this checkout. Run it again with a
# newer wheel to upgrade: configuration and data are kept, the schema is migrated.
# docs/deploy.md walks through it. The paths can be moved (the install test does, into a clean
# folder): PREFIX, ETC_DIR, STATE_DIR, UNIT_DIR, BACKUP_DIR, BIN_DIR; SERVICE_USER="" skips the
# system user and SYSTEMCTL=0 leaves systemd alone.
set -euo pipefail

PREFIX="${PREFIX:-/opt/siaga112}"
ETC_DIR="${ETC_DIR:-/etc/siaga112}"
STATE_DIR="${STATE_DIR:-/var/lib/siaga112}"
UNIT_DIR="${UNIT_DIR:-/etc/systemd/system}"
BACKUP_DIR="${BACKUP_DIR:-/var/backups/siaga112}"
BIN_DIR="${BIN_DIR:-/usr/local/sbin}"
SERVICE_USER="${SERVICE_USER-siaga112}"
SYSTEMCTL="${SYSTEMCTL:-1}"
PYTHON="${PYTHON:-python3}"
HERE="$(cd "$(dirname "$0")" && pwd)"

say() { printf '==> %s\n' "$*"; }
new_secret() { "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(36))'; }

# 1. Python 3.11 (Debian 12's python3) with venv.
if ! "$PYTHON" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  say "installing python3 and python3-venv"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3 python3-venv
fi

# 2. The wheel.
WHEEL="${1:-}"
if [[ -z "$WHEEL" ]]; then
  say "building the wheel from $(dirname "$HERE")"
  build="$(mktemp -d)"
  "$PYTHON" -m pip wheel --quiet --no-deps -w "$build" "$(dirname "$HERE")"
  WHEEL="$(ls "$build"/siaga112-*.whl)"
fi
[[ -f "$WHEEL" ]] || { echo "no such wheel: $WHEEL" >&2; exit 2; }

# 3. A system user that owns the data, nothing else.
if [[ -n "$SERVICE_USER" ]] && ! id "$SERVICE_USER" >/dev/null 2>&1; then
  say "creating system user $SERVICE_USER"
  useradd --system --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin \
    "$SERVICE_USER"
fi

# 4. The virtual environment under PREFIX, owned by root (the service cannot change its code).
say "installing $(basename "$WHEEL") into $PREFIX/venv"
install -d -m 0755 "$PREFIX"
[[ -x "$PREFIX/venv/bin/python" ]] || "$PYTHON" -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install --quiet --upgrade ${PIP_OPTS:-} "$WHEEL"
SHARE="$PREFIX/venv/share/siaga112"

# 5. Configuration under ETC_DIR: written once, never overwritten by an upgrade.
install -d -m 0755 "$ETC_DIR"
if [[ ! -f "$ETC_DIR/callcenter.toml" ]]; then
  say "writing $ETC_DIR/callcenter.toml (edit it: PBX, agencies, districts)"
  sed -e "s#^environment = .*#environment = \"production\"#" \
      -e "s#^data_dir = .*#data_dir = \"$STATE_DIR\"#" \
      -e "s#^spool_dir = .*#spool_dir = \"$STATE_DIR/spool\"#" \
      "$SHARE/config/callcenter.toml" > "$ETC_DIR/callcenter.toml"
fi
if [[ ! -f "$ETC_DIR/env" ]]; then
  say "writing $ETC_DIR/env with new secrets (put the AMI secret in the PBX's manager.conf)"
  umask 077
  {
    echo "# Secrets and per-host settings for every siaga112 unit (mode 0640, never in a log)."
    echo "CALLCENTER_TOKEN_SECRET=$(new_secret)"
    echo "# The AMI account's secret: the same in asterisk/manager.conf on the PBX."
    echo "CALLCENTER_AMI__SECRET=$(new_secret)"
    echo "# Signs the agencies' acknowledgement links (docs/notifications.md)."
    echo "CALLCENTER_NOTIFY__LINK_SECRET=$(new_secret)"
    echo "# PostgreSQL (docs/deploy.md); empty: the embedded SQLite file under $STATE_DIR."
    echo "CALLCENTER_DATABASE_URL="
    echo "# Prometheus metrics on 127.0.0.1:9112 (docs/deploy.md); a siaga112-ami@ unit needs"
    echo "# a port of its own in its ami-PBX.env (CALLCENTER_METRICS__PORT=9113)."
    echo "CALLCENTER_METRICS__ENABLED=true"
    echo "# Logs: one JSON object per line for journald and a log shipper."
    echo "CALLCENTER_LOG_FORMAT=json"
  } > "$ETC_DIR/env"
  umask 022
fi
install -d -m 0750 "$STATE_DIR" "$BACKUP_DIR"
if [[ -n "$SERVICE_USER" ]]; then
  chown "$SERVICE_USER:$SERVICE_USER" "$BACKUP_DIR"
  chown root:"$SERVICE_USER" "$ETC_DIR/env" "$ETC_DIR/callcenter.toml"
  chmod 0640 "$ETC_DIR/env" "$ETC_DIR/callcenter.toml"
  chown "$SERVICE_USER:$SERVICE_USER" "$STATE_DIR"
fi

# 6. systemd units (their paths follow PREFIX, ETC_DIR and STATE_DIR).
install -d -m 0755 "$UNIT_DIR"
for unit in "$SHARE"/deploy/systemd/*; do
  sed -e "s#/opt/siaga112#$PREFIX#g" -e "s#/etc/siaga112#$ETC_DIR#g" \
      -e "s#/var/lib/siaga112#$STATE_DIR#g" -e "s#/var/backups/siaga112#$BACKUP_DIR#g" "$unit" > "$UNIT_DIR/$(basename "$unit")"
  chmod 0644 "$UNIT_DIR/$(basename "$unit")"
done
say "units in $UNIT_DIR: $(cd "$SHARE/deploy/systemd" && echo *)"

# 7. `siaga112 COMMAND`: callcenter as the units run it (their user, environment and config).
install -d -m 0755 "$BIN_DIR"
run_as=""
[[ -n "$SERVICE_USER" ]] && run_as="runuser -u $SERVICE_USER --"
cat > "$BIN_DIR/siaga112" <<EOF
#!/bin/sh
# callcenter as the siaga112 units run it: siaga112 user add admin --role admin, siaga112 backup
set -a
. "$ETC_DIR/env"
set +a
cd "$STATE_DIR" || exit 1
CALLCENTER_CONFIG="$ETC_DIR/callcenter.toml" exec $run_as "$PREFIX/venv/bin/callcenter" "\$@"
EOF
chmod 0755 "$BIN_DIR/siaga112"

# 8. The schema, as the service user (so a SQLite file is the service's own).
say "migrating the database"
"$BIN_DIR/siaga112" migrate

if [[ "$SYSTEMCTL" == 1 ]]; then
  systemctl daemon-reload
  say "done. Next: set the secrets in $ETC_DIR/env, then"
  echo "    systemctl enable --now siaga112.service siaga112-backup.timer siaga112-retention.timer"
  echo "    (and restart it after an upgrade: systemctl restart 'siaga112*')"
else
  say "done (systemd left alone)"
fi
