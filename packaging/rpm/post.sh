#!/bin/sh
# mirrorctl %post ($1: 1 = install, 2 = upgrade). Enables mirrorctl-sync.service
# on installation and reloads systemd. It never starts, stops or restarts a
# container engine and runs no sync; mirrorctl.service (watch) is installed
# disabled, and a running one keeps the previous binary until restarted.
if [ -d /run/systemd/system ]; then
	systemd-tmpfiles --create mirrorctl.conf >/dev/null 2>&1 || :
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ]; then
	systemctl enable mirrorctl-sync.service >/dev/null 2>&1 || :
fi
exit 0
