#!/bin/sh
# Writes secrets.env and infra.env for the Minikube overlay, with fresh random passwords that
# agree between the two files. Refuses to overwrite existing files (pass -f to force).
# Usage: deploy/kustomize/overlays/minikube/make-secrets.sh [-f] [OUTPUT_DIR]
set -eu
force=no
if [ "${1:-}" = "-f" ]; then force=yes; shift; fi
dir=${1:-$(dirname "$0")}
for f in secrets.env infra.env; do
  if [ -e "$dir/$f" ] && [ "$force" = no ]; then
    echo "make-secrets: $dir/$f exists; pass -f to replace it" >&2
    exit 1
  fi
done
# Hex only: safe inside URLs without encoding.
rand() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
mariadb_root=$(rand 16); mariadb_pw=$(rand 16); mongo_pw=$(rand 16); rabbit_pw=$(rand 16)
umask 077
cat > "$dir/infra.env" <<EOT
MARIADB_ROOT_PASSWORD=$mariadb_root
MARIADB_USER=mp3mesh
MARIADB_PASSWORD=$mariadb_pw
MONGO_ROOT_USERNAME=root
MONGO_ROOT_PASSWORD=$mongo_pw
RABBITMQ_USER=mp3mesh
RABBITMQ_PASSWORD=$rabbit_pw
EOT
cat > "$dir/secrets.env" <<EOT
MYSQL_URL=mysql://mp3mesh:$mariadb_pw@mariadb:3306/auth
JWT_SECRET=$(rand 32)
MONGO_URI=mongodb://root:$mongo_pw@mongodb:27017/mp3mesh?authSource=admin
AMQP_URL=amqp://mp3mesh:$rabbit_pw@rabbitmq.mp3mesh.svc.cluster.local:5672/%2F
SMTP_URL=smtp://mailpit:1025
EOT
echo "make-secrets: wrote $dir/secrets.env and $dir/infra.env"
