#!/usr/bin/env bash
# Makes sure the machine-level parts the mesh and its tests rely on are there:
# ffmpeg/ffprobe (tests and benchmarks check MP3s with them), and MariaDB and
# RabbitMQ running when they are installed but stopped. Idempotent and quiet.
set -euo pipefail

say() { printf 'mp3mesh: %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # port, name, seconds
  for _ in $(seq 1 "$3"); do port_open "$1" && return 0; sleep 1; done
  say "$2 did not come up on 127.0.0.1:$1"; return 1
}

if [[ "${NEED_FFMPEG:-1}" == 1 ]] && ! command -v ffprobe >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing ffmpeg (Debian package) ..."
    (apt-get install -y -qq ffmpeg >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq ffmpeg; }) >/dev/null
  else
    say "ffmpeg/ffprobe are missing: install them (e.g. 'sudo apt-get install ffmpeg')"; exit 1
  fi
fi

if [[ -z "${MYSQL_URL:-}" ]] && ! port_open 3306; then
  if [[ -x /usr/sbin/mariadbd ]]; then
    say "starting MariaDB ..."
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_port 3306 MariaDB 60
  else
    say "no MySQL/MariaDB on 127.0.0.1:3306: start one or set MYSQL_URL"; exit 1
  fi
fi

if [[ -z "${AMQP_URL:-}" ]] && ! port_open 5672; then
  if command -v rabbitmq-server >/dev/null; then
    say "starting RabbitMQ ..."
    rabbitmq-server -detached
    wait_port 5672 RabbitMQ 90
  else
    say "no RabbitMQ on 127.0.0.1:5672: start one or set AMQP_URL"; exit 1
  fi
fi
