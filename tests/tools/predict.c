// SPDX-License-Identifier: GPL-2.0
/*
 * predict: which backend the data plane will pick for each client address,
 * computed by the same user-space Maglev code (user/maglev.c) and the same
 * client hash (headers/kha_hash.h) the loader publishes with. The
 * end-to-end tests compare its answer with the backend that really
 * answered a connection through the VIP.
 *
 *   predict [-r RING_SIZE] -b ADDR:PORT[@WEIGHT] ... CLIENT_ADDR ...
 *
 * prints one line per client: "CLIENT_ADDR BACKEND_ADDR:PORT" ("none" when
 * no backend has weight). The table depends only on the set of backends
 * with weight > 0 (their addresses, ports and weights), never on their
 * order, so pass the healthy set the LB should be using.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maglev.h"

static int parse_backend(const char *s, struct maglev_backend *b)
{
	char buf[64], *port, *weight, *end;
	struct in_addr a;
	unsigned long p, w = 1;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	weight = strchr(buf, '@');
	if (weight) {
		*weight++ = '\0';
		w = strtoul(weight, &end, 10);
		if (*end || w > 256)
			return -EINVAL;
	}
	port = strrchr(buf, ':');
	if (!port)
		return -EINVAL;
	*port++ = '\0';
	p = strtoul(port, &end, 10);
	if (*end || p == 0 || p > 65535 || inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	memset(b, 0, sizeof(*b));
	b->addr.v4 = a.s_addr;
	b->port = p;
	b->weight = w;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: predict [-r RING_SIZE] -b ADDR:PORT[@WEIGHT] "
			"... CLIENT_ADDR ...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static struct maglev_backend be[KHA_MAX_BACKENDS];
	uint32_t size = KHA_RING_SIZE_DEFAULT, *ring, id;
	char out[INET_ADDRSTRLEN];
	int n = 0, opt, i, err;

	while ((opt = getopt(argc, argv, "r:b:")) != -1) {
		switch (opt) {
		case 'r':
			size = strtoul(optarg, NULL, 10);
			if (!maglev_size_ok(size)) {
				fprintf(stderr, "predict: ring size %s: not a usable prime\n",
					optarg);
				return 2;
			}
			break;
		case 'b':
			if (n == KHA_MAX_BACKENDS ||
			    parse_backend(optarg, &be[n])) {
				fprintf(stderr, "predict: backend %s: expected ADDR:PORT[@WEIGHT]\n",
					optarg);
				return 2;
			}
			be[n].id = n;
			n++;
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();

	ring = calloc(size, sizeof(*ring));
	if (!ring)
		return 1;
	err = maglev_build(be, n, ring, size);
	if (err) {
		fprintf(stderr, "predict: maglev_build: %s\n", strerror(-err));
		return 1;
	}
	for (i = optind; i < argc; i++) {
		struct kha_addr c = {};
		struct in_addr a;

		if (inet_pton(AF_INET, argv[i], &a) != 1) {
			fprintf(stderr, "predict: client %s: not an IPv4 address\n",
				argv[i]);
			return 2;
		}
		c.v4 = a.s_addr;
		id = maglev_lookup(ring, size, &c);
		if (id == KHA_NO_BACKEND) {
			printf("%s none\n", argv[i]);
			continue;
		}
		inet_ntop(AF_INET, &be[id].addr.v4, out, sizeof(out));
		printf("%s %s:%u\n", argv[i], out, be[id].port);
	}
	free(ring);
	return 0;
}
