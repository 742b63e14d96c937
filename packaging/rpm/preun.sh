#!/bin/sh
# mirrorctl %preun ($1: 0 = erase, 1 = upgrade). On erase: optionally roll back
# first (MIRRORCTL_ROLLBACK=<backup set ID> or newest), then stop and disable
# mirrorctl's units. The engines are left as the last sync left them.
if [ "$1" -eq 0 ]; then
	if [ -n "${MIRRORCTL_ROLLBACK:-}" ]; then
		if [ "$MIRRORCTL_ROLLBACK" = newest ]; then
			/usr/bin/mirrorctl rollback || exit 1
		else
			/usr/bin/mirrorctl rollback "$MIRRORCTL_ROLLBACK" || exit 1
		fi
	fi
	systemctl --no-reload disable --now mirrorctl.service mirrorctl-sync.service >/dev/null 2>&1 || :
fi
exit 0
