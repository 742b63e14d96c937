#!/bin/sh
# mirrorctl %postun ($1: 0 = erase, 1 = upgrade). RPM has no purge: the state in
# /var/lib/mirrorctl (ownership record and backup sets, the only way back to
# the engines' files from before mirrorctl) is kept; remove it by hand.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
