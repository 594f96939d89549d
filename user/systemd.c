// SPDX-License-Identifier: GPL-2.0
/*
 * The daemon's two conversations with systemd, without libsystemd: the
 * notification socket (Type=notify) and one D-Bus question at shutdown
 * (is this a stop or a restart?). See systemd.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "log.h"
#include "systemd.h"

int kha_sd_notify(const char *state)
{
	const char *e = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t len;
	size_t n;
	int fd, ret = 0;

	if (!e || !*e)
		return 0;
	n = strlen(e);
	if ((e[0] != '/' && e[0] != '@') || n >= sizeof(sun.sun_path))
		return -EINVAL;
	memcpy(sun.sun_path, e, n);
	if (e[0] == '@')
		sun.sun_path[0] = '\0'; /* abstract namespace */
	len = offsetof(struct sockaddr_un, sun_path) + n;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
		   (struct sockaddr *)&sun, len) < 0)
		ret = -errno;
	close(fd);
	if (ret)
		log_warn("systemd", "sd_notify %s: %s", e, strerror(-ret));
	return ret;
}

/* ---- systemd job type over D-Bus ---- */

/*
 * Just enough of the D-Bus wire protocol (little endian, EXTERNAL auth) to
 * ask systemd three questions: the unit of a pid, that unit's job, the
 * job's type. No library: sd-bus is not a dependency of this project and
 * this runs once, at shutdown.
 */
struct dbuf {
	uint8_t b[1024];
	size_t n;
	bool overflow;
};

static void db_align(struct dbuf *d, size_t a)
{
	while (d->n % a) {
		if (d->n >= sizeof(d->b)) {
			d->overflow = true;
			return;
		}
		d->b[d->n++] = 0;
	}
}

static void db_put(struct dbuf *d, const void *p, size_t len)
{
	if (d->n + len > sizeof(d->b)) {
		d->overflow = true;
		return;
	}
	memcpy(d->b + d->n, p, len);
	d->n += len;
}

static void db_u32(struct dbuf *d, uint32_t v)
{
	db_align(d, 4);
	db_put(d, &v, 4);
}

static void db_str(struct dbuf *d, const char *s)
{
	db_u32(d, strlen(s));
	db_put(d, s, strlen(s) + 1);
}

static void db_sig(struct dbuf *d, const char *s)
{
	uint8_t l = strlen(s);

	db_put(d, &l, 1);
	db_put(d, s, l + 1);
}

static void db_field(struct dbuf *d, uint8_t code, const char *type,
		     const char *val)
{
	db_align(d, 8);
	db_put(d, &code, 1);
	db_sig(d, type);
	if (!strcmp(type, "g"))
		db_sig(d, val);
	else
		db_str(d, val);
}

static int dbus_call(int fd, uint32_t serial, const char *dest,
		     const char *path, const char *iface, const char *member,
		     const char *sig, const struct dbuf *body, uint8_t *reply,
		     size_t rsize, size_t *body_off, size_t *body_len)
{
	struct dbuf h = {};
	uint32_t flen_off, blen = body ? body->n : 0;
	uint8_t fixed[4] = { 'l', 1, 0, 1 };

	db_put(&h, fixed, 4);
	db_u32(&h, blen);
	db_u32(&h, serial);
	flen_off = h.n;
	db_u32(&h, 0);
	db_field(&h, 1, "o", path);
	if (iface)
		db_field(&h, 2, "s", iface);
	db_field(&h, 3, "s", member);
	if (dest)
		db_field(&h, 6, "s", dest);
	if (sig)
		db_field(&h, 8, "g", sig);
	{
		uint32_t flen = h.n - (flen_off + 4);

		memcpy(h.b + flen_off, &flen, 4);
	}
	db_align(&h, 8);
	if (body)
		db_put(&h, body->b, body->n);
	if (h.overflow)
		return -E2BIG;
	if (send(fd, h.b, h.n, MSG_NOSIGNAL) != (ssize_t)h.n)
		return -EIO;
	for (;;) {
		size_t got = 0, need = 16, hend;
		uint32_t fl, bl;

		while (got < need) {
			ssize_t r = recv(fd, reply + got, need - got, 0);

			if (r <= 0)
				return r < 0 ? -errno : -ECONNRESET;
			got += r;
			if (got == 16 && need == 16) {
				if (reply[0] != 'l')
					return -EPROTO;
				memcpy(&bl, reply + 4, 4);
				memcpy(&fl, reply + 12, 4);
				hend = (16 + fl + 7) & ~7ul;
				need = hend + bl;
				if (need > rsize)
					return -E2BIG;
			}
		}
		memcpy(&bl, reply + 4, 4);
		memcpy(&fl, reply + 12, 4);
		hend = (16 + fl + 7) & ~7ul;
		if (reply[1] == 4) /* a signal: not our answer */
			continue;
		*body_off = hend;
		*body_len = bl;
		if (reply[1] == 3)
			return -EREMOTEIO;
		if (reply[1] != 2)
			return -EPROTO;
		return 0;
	}
}

/* a string ('s' or 'o') at offset *o inside body b (len n) */
static int db_get_str(const uint8_t *b, size_t n, size_t *o, char *out,
		      size_t olen)
{
	uint32_t l;

	*o = (*o + 3) & ~3ul;
	if (*o + 4 > n)
		return -EPROTO;
	memcpy(&l, b + *o, 4);
	*o += 4;
	if (*o + l + 1 > n || l >= olen)
		return -EPROTO;
	memcpy(out, b + *o, l);
	out[l] = '\0';
	*o += l + 1;
	return 0;
}

static int dbus_connect(const char *path, bool hello)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 2 };
	char line[256], auth[64], uidhex[32], uid[16];
	ssize_t r;
	size_t i;
	int fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)))
		goto fail;
	snprintf(uid, sizeof(uid), "%u", (unsigned)geteuid());
	for (i = 0; uid[i]; i++)
		sprintf(uidhex + 2 * i, "%02x", (unsigned char)uid[i]);
	snprintf(auth, sizeof(auth), "AUTH EXTERNAL %s\r\n", uidhex);
	if (send(fd, "", 1, MSG_NOSIGNAL) != 1 ||
	    send(fd, auth, strlen(auth), MSG_NOSIGNAL) != (ssize_t)strlen(auth))
		goto fail;
	r = recv(fd, line, sizeof(line) - 1, 0);
	if (r < 3 || strncmp(line, "OK ", 3)) {
		errno = EACCES;
		goto fail;
	}
	if (send(fd, "BEGIN\r\n", 7, MSG_NOSIGNAL) != 7)
		goto fail;
	if (hello) {
		uint8_t rep[512];
		size_t bo, bl;
		int ret = dbus_call(fd, 1, "org.freedesktop.DBus",
				    "/org/freedesktop/DBus",
				    "org.freedesktop.DBus", "Hello", NULL,
				    NULL, rep, sizeof(rep), &bo, &bl);

		if (ret) {
			close(fd);
			return ret;
		}
	}
	return fd;
fail:
	r = -errno;
	close(fd);
	return r ? r : -EIO;
}

static int prop_get(int fd, uint32_t serial, const char *dest,
		    const char *path, const char *iface, const char *prop,
		    uint8_t *rep, size_t rsize, size_t *bo, size_t *bl)
{
	struct dbuf b = {};

	db_str(&b, iface);
	db_str(&b, prop);
	return dbus_call(fd, serial, dest, path,
			 "org.freedesktop.DBus.Properties", "Get", "ss", &b,
			 rep, rsize, bo, bl);
}

int kha_systemd_job_type_at(const char *sock, bool bus, int pid, char *buf,
			    size_t len)
{
	const char *dest = "org.freedesktop.systemd1";
	char unit[256], job[256], sig[16];
	uint8_t rep[4096];
	size_t bo, bl, o;
	uint32_t job_id;
	struct dbuf b = {};
	int fd, ret;

	fd = dbus_connect(sock, bus);
	if (fd < 0)
		return fd;
	db_u32(&b, pid);
	ret = dbus_call(fd, 2, dest, "/org/freedesktop/systemd1",
			"org.freedesktop.systemd1.Manager", "GetUnitByPID",
			"u", &b, rep, sizeof(rep), &bo, &bl);
	if (ret)
		goto out;
	o = 0;
	ret = db_get_str(rep + bo, bl, &o, unit, sizeof(unit));
	if (ret)
		goto out;
	ret = prop_get(fd, 3, dest, unit, "org.freedesktop.systemd1.Unit",
		       "Job", rep, sizeof(rep), &bo, &bl);
	if (ret)
		goto out;
	/* variant: signature "(uo)", then the struct aligned to 8 */
	if (bl < 2 || rep[bo] >= sizeof(sig)) {
		ret = -EPROTO;
		goto out;
	}
	memcpy(sig, rep + bo + 1, rep[bo]);
	sig[rep[bo]] = '\0';
	if (strcmp(sig, "(uo)")) {
		ret = -EPROTO;
		goto out;
	}
	o = (1 + rep[bo] + 1 + 7) & ~7ul;
	if (o + 4 > bl) {
		ret = -EPROTO;
		goto out;
	}
	memcpy(&job_id, rep + bo + o, 4);
	o += 4;
	ret = db_get_str(rep + bo, bl, &o, job, sizeof(job));
	if (ret)
		goto out;
	if (!job_id) {
		ret = -ENOENT;
		goto out;
	}
	ret = prop_get(fd, 4, dest, job, "org.freedesktop.systemd1.Job",
		       "JobType", rep, sizeof(rep), &bo, &bl);
	if (ret)
		goto out;
	if (bl < 3 || rep[bo] != 1 || rep[bo + 1] != 's') {
		ret = -EPROTO;
		goto out;
	}
	o = 3;
	ret = db_get_str(rep + bo, bl, &o, buf, len);
out:
	close(fd);
	return ret;
}

int kha_systemd_job_type(int pid, char *buf, size_t len)
{
	int ret = kha_systemd_job_type_at("/run/systemd/private", false, pid,
					  buf, len);

	/* the private socket is systemd's own; the bus is the fallback */
	if (ret == -ENOENT || ret == -ECONNREFUSED || ret == -EACCES)
		ret = kha_systemd_job_type_at("/run/dbus/system_bus_socket",
					      true, pid, buf, len);
	return ret;
}

