/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the daemon says to and asks of systemd, by hand (no libsystemd):
 * sd_notify(3) datagrams, and the type of the job systemd runs on our unit,
 * which tells a SIGTERM for `systemctl stop` (tear everything down) from
 * one for `systemctl restart` (leave the data plane to the next daemon).
 */
#ifndef KHA_SYSTEMD_H
#define KHA_SYSTEMD_H

#include <stdbool.h>
#include <stddef.h>

/*
 * sd_notify(3) by hand: one datagram to $NOTIFY_SOCKET (a path, or an
 * abstract name written with a leading '@'). 0 when sent or when not under
 * systemd, -errno otherwise.
 */
int kha_sd_notify(const char *state);

/*
 * The type of the job systemd is running on the unit of process `pid`
 * ("stop", "restart", "try-restart", ...), asked over D-Bus (systemd's
 * private socket, else the system bus). -ENOENT when there is no job,
 * other -errno when systemd cannot be asked.
 */
int kha_systemd_job_type(int pid, char *buf, size_t len);

/*
 * The same over one socket: systemd's private socket (peer to peer, bus =
 * false) or a message bus (bus = true: Hello first). No job: -ENOENT; an
 * error reply from the peer (no such unit, no such service): -EREMOTEIO.
 */
int kha_systemd_job_type_at(const char *sock, bool bus, int pid, char *buf,
			    size_t len);

#endif /* KHA_SYSTEMD_H */
