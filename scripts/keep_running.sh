#!/usr/bin/env bash
# Start a command again whenever it exits, as systemd's Restart=always or a container
# orchestrator does in production. honcho stops every process once one exits; the
# scaled shape (Procfile.scaled) must instead live through one process being killed.
# honcho signals the whole process group on Ctrl-C, so this loop ends with its command.
while :; do
  "$@"
  status=$?
  echo "keep_running: '$1' exited with status $status; starting it again in 2 s" >&2
  sleep 2
done
