// SPDX-License-Identifier: GPL-2.0
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "log.h"

static int log_max = KHA_LOG_INFO;
static int log_prefix; /* stderr goes to the journal */
static int libbpf_quiet;

static const char *const level_names[] = {
	[KHA_LOG_ERR] = "error", [KHA_LOG_WARN] = "warning",
	[KHA_LOG_NOTICE] = "notice", [KHA_LOG_INFO] = "info",
	[KHA_LOG_DEBUG] = "debug",
};

void kha_vlog(int level, const char *subsys, const char *fmt, va_list ap)
{
	char buf[1024];
	size_t n;

	if (level > log_max)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (log_prefix)
		fprintf(stderr, "<%d>%s %s: %s\n", level, level_names[level],
			subsys, buf);
	else
		fprintf(stderr, "%s %s: %s\n", level_names[level], subsys, buf);
}

void kha_log(int level, const char *subsys, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kha_vlog(level, subsys, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	int l = level == LIBBPF_WARN ? KHA_LOG_WARN :
		level == LIBBPF_INFO ? KHA_LOG_DEBUG : KHA_LOG_DEBUG + 1;

	if (libbpf_quiet || l > log_max)
		return 0;
	kha_vlog(l, "libbpf", fmt, ap);
	return 0;
}

void kha_log_quiet_libbpf(int quiet)
{
	libbpf_quiet = quiet;
}

void kha_log_init(int max_level)
{
	log_max = max_level;
	/* systemd sets JOURNAL_STREAM when stderr is connected to journald */
	log_prefix = getenv("JOURNAL_STREAM") != NULL;
	libbpf_set_print(libbpf_print);
}
