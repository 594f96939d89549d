#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Install every build and test dependency of kha-xdp from Debian 12's
# packages. Idempotent: does nothing when everything is already present.
set -eu

PKGS="make gcc clang llvm pkg-config libbpf-dev libelf-dev zlib1g-dev
libnl-3-dev libnl-route-3-dev libcunit1-dev libssl-dev bpftool
iproute2 ethtool iputils-ping procps psmisc python3 openssl
keepalived haproxy tcpdump socat kmod systemd"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	echo "install-deps: installing:$missing"
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: must run as root to install packages" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# keepalived and haproxy must not start on the build host's interfaces
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	apt-get install -y -q --no-install-recommends $missing
	rm -f /usr/sbin/policy-rc.d
fi

# bpffs for pinned programs and maps
if ! grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
	mkdir -p /sys/fs/bpf
	mount -t bpf bpf /sys/fs/bpf
fi
exit 0
