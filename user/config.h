/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kha-xdp configuration: one file, parsed into plain structs. Parsing is
 * pure (no sockets, no system changes); errors name `file:line: message`.
 * File syntax and every key: docs/config.md.
 */
#ifndef KHA_CONFIG_H
#define KHA_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <net/if.h>

#include "../headers/kha_abi.h"

#define KHA_CONF_DEFAULT "/etc/kha-xdp/kha-xdp.conf"
#define KHA_PIN_ROOT_DEFAULT "/sys/fs/bpf/kha-xdp"
#define KHA_CTL_SOCK_DEFAULT "/run/kha-xdp/kha-xdp.sock"
#define KHA_MAX_PEERS 8
#define KHA_PATH_MAX 256

enum kha_check_type {
	KHA_CHECK_TCP = 0, /* haproxy `check`: TCP connect */
	KHA_CHECK_HTTPS,   /* `option httpchk GET /readyz` + `check-ssl` */
	KHA_CHECK_HTTP,    /* plain HTTP GET (lab and non-TLS backends) */
	KHA_CHECK_NONE,    /* always healthy */
};

/* Probe settings; per VIP, optionally overridden per backend. Times in ms. */
struct kha_check_conf {
	enum kha_check_type type;
	uint32_t inter;     /* default 2000 */
	uint32_t fastinter; /* 0 = inter; used while transitioning */
	uint32_t downinter; /* 0 = inter; used while DOWN */
	uint32_t timeout;   /* default = inter, capped to inter */
	uint32_t fall;      /* default 3 (haproxy) */
	uint32_t rise;      /* default 2 */
	uint16_t port;      /* 0 = backend port */
	char path[128];     /* HTTP(S) path, default "/readyz" */
	char ca_file[KHA_PATH_MAX]; /* non-empty: verify the certificate */
	char sni[128];
};

struct kha_backend_conf {
	struct sockaddr_in addr; /* address and port, network order */
	uint32_t weight;         /* 0 = drained; default 1, max 256 */
	struct kha_check_conf check;
	int line;                /* where it was declared */
};

struct kha_vip_conf {
	struct sockaddr_in addr;
	int nr_backends;
	struct kha_backend_conf backends[KHA_MAX_BACKENDS];
	struct kha_check_conf check; /* the VIP's defaults */
	int line;
};

enum kha_vrrp_state { KHA_VRRP_INIT = 0, KHA_VRRP_BACKUP, KHA_VRRP_MASTER };

struct kha_vrrp_conf {
	bool enabled;              /* a `vrrp { }` block was present */
	int version;               /* 2 or 3; default 2 */
	int vrid;                  /* 1..255 */
	int priority;              /* 1..255; default 100 */
	uint32_t advert_int_cs;    /* centiseconds; v2 whole seconds only */
	enum kha_vrrp_state initial_state; /* BACKUP default */
	bool preempt;              /* default true */
	uint32_t preempt_delay_ms; /* default 0 */
	int nr_peers;              /* 0 = multicast 224.0.0.18 */
	struct in_addr peers[KHA_MAX_PEERS];
	struct in_addr src_addr;   /* 0 = interface primary address */
	char auth_pass[9];         /* v2 simple password, <= 8 chars; "" = none */
	int track_weight;          /* lowered when unhealthy; default 30 */
	uint32_t garp_delay_ms;    /* between the takeover bursts; default 5000 */
	uint32_t garp_repeat;      /* GARPs per burst; default 5 */
	uint32_t garp_refresh_ms;  /* 0 = no periodic refresh */
	uint32_t garp_refresh_repeat; /* default 1 */
	char notify[KHA_PATH_MAX]; /* run as `notify STATE` without a shell */
	int line;
};

struct kha_status_conf {
	bool enabled;
	struct sockaddr_in listen; /* default 127.0.0.1:10080 */
	char user[64];             /* optional basic auth; no default */
	char password[64];
};

struct kha_config {
	char path[KHA_PATH_MAX];
	char ifname[IF_NAMESIZE];  /* `interface`; required */
	char pin_root[KHA_PATH_MAX]; /* default KHA_PIN_ROOT_DEFAULT */
	char ctl_socket[KHA_PATH_MAX]; /* default KHA_CTL_SOCK_DEFAULT */
	int xdp_generic;           /* xdp_mode generic */
	uint16_t snat_port_lo, snat_port_hi;
	uint32_t ring_size;        /* prime; default 65537 */
	struct in_addr local_addr; /* node address for local clients; 0 = auto */
	bool local_clients;        /* cgroup connect4 hook; default true */
	char cgroup[KHA_PATH_MAX]; /* cgroup v2 dir; "" = root from /proc/mounts */
	int nr_vips;
	struct kha_vip_conf vips[KHA_MAX_VIPS];
	struct kha_vrrp_conf vrrp;
	struct kha_status_conf status;
};

/* Fill in every default; the result is a valid config with no VIPs. */
void kha_config_defaults(struct kha_config *cfg);

/*
 * Parse `path` into `cfg` (which this call initialises). On error returns
 * -EINVAL (or -errno for I/O) and writes one `file:line: message` into
 * err[errlen]; `cfg` is then unspecified and must not be applied.
 */
int kha_config_load(const char *path, struct kha_config *cfg, char *err,
		    size_t errlen);

/* Same, from a string already in memory; `name` is used in messages. */
int kha_config_parse(const char *name, const char *text,
		     struct kha_config *cfg, char *err, size_t errlen);

/* Total backends over all VIPs. */
int kha_config_nr_backends(const struct kha_config *cfg);

#endif /* KHA_CONFIG_H */
